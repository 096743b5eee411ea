#include "tests/hostile/capture_support.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace vifd::backend::hostile {

CaptureConnection::CaptureConnection(const std::string& socket_path,
                                     const nlohmann::json& request) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof(address.sun_path) - 1);
  const std::string line = request.dump() + "\n";
  if (fd_ < 0 ||
      ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      ::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    return;
  }
  if (auto first = next_line(std::chrono::seconds(5))) {
    answer_ = std::move(*first);
  }
}

CaptureConnection::~CaptureConnection() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::optional<nlohmann::json> CaptureConnection::next_line(std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  std::array<char, 65536> buffer{};
  while (pending_.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) {
      return std::nullopt;
    }
    const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n <= 0) {
      return std::nullopt;
    }
    pending_.append(buffer.data(), static_cast<std::size_t>(n));
  }
  const auto end = pending_.find('\n');
  nlohmann::json line = nlohmann::json::parse(pending_.substr(0, end), nullptr, false);
  pending_.erase(0, end + 1);
  return line;
}

VifctlProcess::VifctlProcess(const std::vector<std::string>& arguments,
                             std::filesystem::path stderr_file,
                             const std::filesystem::path& stdout_file)
    : stderr_file_(std::move(stderr_file)) {
  std::vector<std::string> argv_storage{VIFCTL_PATH};
  argv_storage.insert(argv_storage.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  argv.reserve(argv_storage.size() + 1);
  for (auto& argument : argv_storage) {
    argv.push_back(argument.data());
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_file_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!stdout_file.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_file.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  if (posix_spawn(&pid_, VIFCTL_PATH, &actions, nullptr, argv.data(), environ) != 0) {
    pid_ = -1;
  }
  posix_spawn_file_actions_destroy(&actions);
}

VifctlProcess::~VifctlProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::optional<int> VifctlProcess::wait(std::chrono::milliseconds bound) {
  if (pid_ <= 0) {
    return std::nullopt;
  }
  const auto deadline = std::chrono::steady_clock::now() + bound;
  do {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < deadline);
  return std::nullopt;
}

void VifctlProcess::signal(int number) const {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, number);
  }
}

std::string VifctlProcess::stderr_text() const {
  std::ifstream file(stderr_file_);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::optional<PcapFile> read_pcap(const std::filesystem::path& path) {
  std::array<char, PCAP_ERRBUF_SIZE> error{};
  pcap_t* pcap = pcap_open_offline(path.c_str(), error.data());
  if (pcap == nullptr) {
    ADD_FAILURE() << "pcap_open_offline " << path << ": " << error.data();
    return std::nullopt;
  }
  PcapFile file;
  file.linktype = pcap_datalink(pcap);
  file.snaplen = pcap_snapshot(pcap);
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(pcap, &header, &data)) == 1) {
    file.frames.push_back(
        {static_cast<std::int64_t>(header->ts.tv_sec) * 1'000'000 + header->ts.tv_usec, header->len,
         std::vector<std::uint8_t>(data, data + header->caplen)});
  }
  if (rc != PCAP_ERROR_BREAK) {
    ADD_FAILURE() << "reading " << path << ": " << pcap_geterr(pcap);
    pcap_close(pcap);
    return std::nullopt;
  }
  pcap_close(pcap);
  return file;
}

}  // namespace vifd::backend::hostile
