// How the suite's report reads a run's result files: repetitions of one run stand as one result.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "load/report.hpp"

namespace invsync::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class SuiteReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("invsync-report-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& stem, const json& doc) {
    std::ofstream(dir_ / (stem + ".json")) << doc.dump();
  }

  static json Run(double orders_per_s, bool clean = true) {
    return {{"orders_per_s", orders_per_s}, {"audit", {{"clean", clean}}}};
  }

  fs::path dir_;
};

TEST_F(SuiteReportTest, RepetitionsStandAsTheOneOfMedianThroughputCarryingAllInRunOrder) {
  Write("flash-sale-invsync.rep1", Run(10));
  Write("flash-sale-invsync.rep2", Run(30));
  Write("flash-sale-invsync.rep3", Run(20));

  const auto results = LoadResults(dir_);

  ASSERT_EQ(results.size(), 1U);
  const json& doc = results.at("flash-sale-invsync");
  EXPECT_EQ(doc["orders_per_s"], 20);
  ASSERT_EQ(doc["repetitions"].size(), 3U);
  EXPECT_EQ(doc["repetitions"][0]["orders_per_s"], 10);
  EXPECT_EQ(doc["repetitions"][1]["orders_per_s"], 30);
  EXPECT_EQ(doc["repetitions"][2]["orders_per_s"], 20);
}

TEST_F(SuiteReportTest, ARepetitionWhoseAuditFailedStandsForTheRunWhateverItsThroughput) {
  Write("flash-sale-db-only.rep1", Run(20));
  Write("flash-sale-db-only.rep2", Run(99, /*clean=*/false));
  Write("flash-sale-db-only.rep3", Run(10));

  const json doc = LoadResults(dir_).at("flash-sale-db-only");

  EXPECT_EQ(doc["orders_per_s"], 99);
  EXPECT_FALSE(doc["audit"]["clean"].get<bool>());
}

TEST_F(SuiteReportTest, RedisBenchmarkRepetitionsAreRankedByRequestsPerSecond) {
  Write("redis-raw-50.rep1", {{"rps", 300.0}});
  Write("redis-raw-50.rep2", {{"rps", 100.0}});

  const json doc = LoadResults(dir_).at("redis-raw-50");

  EXPECT_EQ(doc["rps"], 100.0) << "the lower middle of an even count";
}

TEST_F(SuiteReportTest, CatalogueRepetitionsAreRankedByOperationsOfAllKinds) {
  // Orders are a tenth of a catalogue's operations and need not follow their order.
  auto run = [](double operations, double orders) {
    return json{{"scenario", "catalogue"},
                {"requests_per_s", operations},
                {"orders_per_s", orders},
                {"audit", {{"clean", true}}}};
  };
  Write("catalogue-invsync.rep1", run(30000, 3100));
  Write("catalogue-invsync.rep2", run(45000, 2900));
  Write("catalogue-invsync.rep3", run(40000, 3000));

  const json doc = LoadResults(dir_).at("catalogue-invsync");

  EXPECT_EQ(doc["requests_per_s"], 40000);
  EXPECT_EQ(doc["repetitions"].size(), 3U);
}

TEST_F(SuiteReportTest, SingleRunsKeepTheirNames) {
  Write("sweep-invsync-64", Run(5));
  Write("machine", {{"nproc", "2"}});

  const auto results = LoadResults(dir_);

  EXPECT_EQ(results.at("sweep-invsync-64")["orders_per_s"], 5);
  EXPECT_FALSE(results.at("sweep-invsync-64").contains("repetitions"));
  EXPECT_EQ(results.at("machine")["nproc"], "2");
}

}  // namespace
}  // namespace invsync::bench
