#define BOOST_TEST_MODULE http_server_tests
#include <boost/test/included/unit_test.hpp>
