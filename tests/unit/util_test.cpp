#include <gtest/gtest.h>
#include <pcr/util/duration.hpp>
TEST(ParseDuration, Seconds) { EXPECT_EQ(pcr::util::parse_duration("90s")->count(), 90000); }
