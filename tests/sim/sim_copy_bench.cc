// Batched grant copy through the simulator against plain memcpy, in one
// run: the difference is the cost of the sim's per-segment grant checks.
// Not a ctest; run build-sim/tests/sim/sim_copy_bench.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "common/platform/platform.h"
#include "common/platform/sim/sim_host.h"
#include "common/platform/sim/sim_platform.h"

namespace {

using vifd::platform::GrantCopySegment;
using vifd::platform::GrantRef;
using vifd::platform::kPageSize;

constexpr std::size_t kPages = 256;

void BM_GrantCopyBatched(benchmark::State& state) {
  char pattern[] = "/tmp/vsim-bench-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  const std::filesystem::path dir = pattern;
  vifd::sim::create_host(dir);
  vifd::sim::create_domain(dir, 1);
  {
    auto share = vifd::platform::make_sim_platform(dir, 1)->open_grant_share();
    auto table = vifd::platform::make_sim_platform(dir, 0)->open_grant_table();
    std::vector<GrantRef> refs(kPages);
    void* pages = share->share(0, refs, false);
    std::memset(pages, 0x5A, kPages * kPageSize);
    std::vector<std::byte> local(kPages * kPageSize);
    const auto batch = static_cast<std::size_t>(state.range(0));
    std::vector<GrantCopySegment> segments(batch);
    for (auto _ : state) {
      for (std::size_t first = 0; first < kPages; first += batch) {
        for (std::size_t i = 0; i < batch; ++i) {
          segments[i].source.foreign = {refs[first + i], 0, 1};
          segments[i].dest.virt = local.data() + (first + i) * kPageSize;
          segments[i].len = kPageSize;
          segments[i].flags = vifd::platform::kCopySourceGref;
        }
        table->copy(segments);
      }
      benchmark::DoNotOptimize(local.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kPages * kPageSize));
    share->unshare(pages, kPages);
  }
  vifd::sim::destroy_host(dir);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_GrantCopyBatched)->Arg(1)->Arg(16)->Arg(64)->Arg(256);

void BM_Memcpy(benchmark::State& state) {
  std::vector<std::byte> source(kPages * kPageSize, std::byte{0x5A});
  std::vector<std::byte> dest(kPages * kPageSize);
  for (auto _ : state) {
    for (std::size_t page = 0; page < kPages; ++page) {
      std::memcpy(dest.data() + page * kPageSize, source.data() + page * kPageSize, kPageSize);
    }
    benchmark::DoNotOptimize(dest.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kPages * kPageSize));
}
BENCHMARK(BM_Memcpy);

}  // namespace

BENCHMARK_MAIN();
