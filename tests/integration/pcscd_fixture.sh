#!/usr/bin/env bash
# ctest fixture: starts a private pcscd with the vsmartcard vpcd driver, and stops it by PID.
#   pcscd_fixture.sh start DIR PORT   -> pcscd's socket at DIR/run/pcscd.comm, vpcd on PORT/PORT+1
#   pcscd_fixture.sh stop DIR
# pcscd hard-codes /run/pcscd; it runs in a private mount namespace where DIR/run is bound over
# /run/pcscd, so it never meets a system pcscd, and clients reach it with PCSCLITE_CSOCK_NAME.
# Needs root (unshare -m, mount --bind), as in CI.
set -euo pipefail
action=$1
dir=$2
case $action in
  start)
    port=${3:-29963}
    "$0" stop "$dir" 2>/dev/null || true
    mkdir -p "$dir/run" "$dir/conf" /run/pcscd
    printf 'FRIENDLYNAME "Virtual PCD"\nDEVICENAME   /dev/null:0x%X\nLIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd.so\nCHANNELID    0x%X\n' \
      "$port" "$port" > "$dir/conf/vpcd"
    if ss -ltn "( sport = :$port )" 2>/dev/null | grep -q LISTEN; then
      echo "pcscd_fixture: port $port is taken (another pcscd with vpcd?)" >&2
      exit 1
    fi
    setsid unshare -m sh -c "mount --bind '$dir/run' /run/pcscd && exec /usr/sbin/pcscd -f -c '$dir/conf'" \
      > "$dir/pcscd.log" 2>&1 < /dev/null &
    for _ in $(seq 1 100); do
      if [ -S "$dir/run/pcscd.comm" ] && ss -ltn "( sport = :$port )" | grep -q LISTEN; then
        echo "pcscd_fixture: pcscd $(tr -d '\0' < "$dir/run/pcscd.pid") up, socket $dir/run/pcscd.comm, vpcd port $port"
        exit 0
      fi
      sleep 0.1
    done
    echo "pcscd_fixture: pcscd did not come up; its log:" >&2
    cat "$dir/pcscd.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$dir/run/pcscd.pid" ]; then
      pid=$(tr -d '\0' < "$dir/run/pcscd.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/run/pcscd.pid" "$dir/run/pcscd.comm"
      echo "pcscd_fixture: stopped pcscd $pid"
    fi
    ;;
  *)
    echo "usage: $0 start DIR [PORT] | stop DIR" >&2
    exit 2
    ;;
esac
