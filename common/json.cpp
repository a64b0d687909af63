// Boost.JSON is used header-only: its implementation is compiled here, in exactly one translation unit.
#include <boost/json/src.hpp>
