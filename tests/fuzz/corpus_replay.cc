// main() for fuzz targets outside a libFuzzer build: runs every file of the
// directories (or files) named on the command line through the target once,
// in name order, so the checked-in corpus is a regression suite in the
// ordinary, ASan and TSan builds. A finding aborts, as under libFuzzer.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  // A fresh allocation of exactly the input's size, as libFuzzer passes it,
  // so ASan catches a read one past the end.
  std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(data.data(), data.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t count = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::directory_iterator(arg)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(arg);
    }
    for (const auto& file : files) {
      run_file(file);
      ++count;
    }
  }
  if (count == 0) {
    std::fprintf(stderr, "corpus_replay: no input found\n");
    return 1;
  }
  std::printf("corpus_replay: %zu inputs passed\n", count);
  return 0;
}
