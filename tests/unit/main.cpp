#define BOOST_TEST_MODULE syncmesh_unit
#include <boost/test/unit_test.hpp>
