#include <pcr/report/junit.hpp>
#include <pcr/util/escape.hpp>

#include <gtest/gtest.h>

using namespace pcr;
using namespace pcr::util;

TEST(XmlEscape, SpecialCharactersControlBytesAndBadUtf8) {
  EXPECT_EQ(xml_escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(xml_escape("]]>"), "]]&gt;");
  EXPECT_EQ(xml_escape(std::string("a\0b\x01\x1b[31m", 9)), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD[31m");
  EXPECT_EQ(xml_escape("tab\tnl\ncr\r"), "tab\tnl\ncr\r");
  EXPECT_EQ(xml_escape("\xff\xfe ok \xc3\xa9"), "\xEF\xBF\xBD\xEF\xBF\xBD ok \xc3\xa9");
  EXPECT_EQ(xml_escape("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(xml_escape("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  EXPECT_EQ(xml_escape("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");  // an emoji stays
}

TEST(ValidUtf8, ReplacesOnlyBadBytes) {
  EXPECT_EQ(valid_utf8("caf\xc3\xa9 \xe2\x82"), "caf\xc3\xa9 \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(valid_utf8("\x01 ok"), "\x01 ok");
}

TEST(Slug, SafeFileNames) {
  EXPECT_EQ(slug("spec/models/user_spec.rb"), "spec_models_user_spec.rb");
  std::string up = slug("../../etc/passwd");  // one name: no slash, not hidden
  EXPECT_EQ(up.find('/'), std::string::npos);
  EXPECT_NE(up[0], '.');
  EXPECT_EQ(slug("   "), "job");
  EXPECT_EQ(slug(std::string(200, 'a')).size(), 60u);
}

TEST(JUnit, SkippedStepsFlakyAndFailuresFromARecord) {
  report::RunRecord run;
  run.info.name = "p";
  report::StepEntry s1;
  s1.name = "tests";
  s1.ran = true;
  s1.jobs = 2;
  report::StepEntry s2;
  s2.name = "deploy";
  run.steps = {s1, s2};
  report::JobEntry ok;
  ok.items = {"a b"};
  ok.result.flaky = true;
  ok.attempt = 1;
  report::JobEntry bad;
  bad.job = 2;
  bad.command = "make <x>";
  bad.result.status = pipeline::JobStatus::failed;
  bad.result.exit_code = 2;
  bad.tail = "oops ]]> \x01";
  run.jobs = {ok, bad};
  std::string xml = report::junit_xml(run);
  EXPECT_NE(xml.find("<testsuite name=\"tests\" tests=\"2\" failures=\"1\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("name=\"a b\""), std::string::npos);
  EXPECT_NE(xml.find("status=\"flaky\""), std::string::npos);
  EXPECT_NE(xml.find("name=\"make &lt;x&gt;\""), std::string::npos);
  EXPECT_NE(xml.find("oops ]]&gt; \xEF\xBF\xBD"), std::string::npos);
  EXPECT_NE(xml.find("<testsuite name=\"deploy\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"1\""), std::string::npos);
}
