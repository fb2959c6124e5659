// Boost.Asio, Asio SSL and Beast compiled once (BOOST_ASIO_SEPARATE_COMPILATION,
// BOOST_BEAST_SEPARATE_COMPILATION): the only place their implementation is instantiated.
// <utility> first: Boost 1.74's awaitable.hpp uses std::exchange without including it (g++ 12).
#include <utility>

#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
