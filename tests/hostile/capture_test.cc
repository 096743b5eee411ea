// vifctl capture end to end: guests on one bridge exchange frames through
// vifd's in-process switch (they never pass a TAP), the vifctl program
// records those of one vif into a pcap file, libpcap reads it back.
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/lib/control/control_socket.h"
#include "tests/hostile/capture_support.h"
#include "tests/hostile/hostile_harness.h"

namespace vifd::backend::hostile {
namespace {

constexpr auto kBound = std::chrono::milliseconds(10000);

std::int64_t realtime_us() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1000;
}

class CaptureTest : public HostileTest {
 protected:
  void SetUp() override {
    HostileTest::SetUp();
    start();
    for (Guest* guest : {&a(), &b(), &helper()}) {
      guest->post_rx();
    }
  }

  std::size_t captures(platform::DomId domid) {
    return describe(domid).value("captures", std::size_t{999});
  }

  // Sends `frame` from `from` and waits until `to` has received it.
  void deliver(Guest& from, Guest& to, const std::vector<std::uint8_t>& frame) {
    ASSERT_NE(from.send(frame), 0U);
    from.wait_tx_responses(1, kBound);
    std::size_t received = 0;
    ASSERT_TRUE(eventually([&] {
      received += to.reap_rx();
      return received >= 1;
    })) << "frame "
        << from.domid() << " -> " << to.domid() << " not delivered";
  }

  std::vector<std::string> capture_arguments(std::vector<std::string> extra) {
    std::vector<std::string> arguments{"--control-socket", socket_path(), "capture"};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    return arguments;
  }

  std::filesystem::path file(const std::string& name) const { return host_->dir() / name; }
};

TEST_F(CaptureTest, RecordsEveryFrameTheSwitchForwardsFromAndToTheVifUntilTheCount) {
  const auto begin_us = realtime_us();
  VifctlProcess vifctl(capture_arguments({"1.0", "-w", file("a.pcap").string(), "-c", "5"}),
                       file("vifctl.err"));
  ASSERT_TRUE(eventually([&] { return captures(kA) == 1; }, kBound)) << vifctl.stderr_text();

  const auto a_to_b = ethernet_frame(b().mac(), a().mac(), 100, 1);
  const auto b_to_a = ethernet_frame(a().mac(), b().mac(), 200, 2);
  const auto b_to_helper = ethernet_frame(helper().mac(), b().mac(), 300, 3);  // not A's
  const auto a_to_helper = ethernet_frame(helper().mac(), a().mac(), 1400, 4);
  const auto helper_to_a = ethernet_frame(a().mac(), helper().mac(), 60, 5);
  const auto a_to_b_full = ethernet_frame(b().mac(), a().mac(), 1514, 6);
  deliver(a(), b(), a_to_b);
  deliver(b(), a(), b_to_a);
  deliver(b(), helper(), b_to_helper);
  deliver(a(), helper(), a_to_helper);
  deliver(helper(), a(), helper_to_a);
  deliver(a(), b(), a_to_b_full);

  const auto status = vifctl.wait(kBound);
  ASSERT_TRUE(status) << "vifctl did not stop after -c 5";
  EXPECT_EQ(*status, 0) << vifctl.stderr_text();
  EXPECT_NE(vifctl.stderr_text().find("5 frames captured from vif1.0, 0 dropped"),
            std::string::npos)
      << vifctl.stderr_text();
  const auto end_us = realtime_us();

  const auto pcap = read_pcap(file("a.pcap"));
  ASSERT_TRUE(pcap);
  EXPECT_EQ(pcap->linktype, DLT_EN10MB);
  ASSERT_EQ(pcap->frames.size(), 5U);
  std::vector<std::vector<std::uint8_t>> got;
  std::size_t from_a = 0;
  std::size_t to_a = 0;
  const protocol::MacAddress mac_a = a().mac();
  for (const PcapFrame& frame : pcap->frames) {
    EXPECT_EQ(frame.length, frame.bytes.size()) << "whole frames under the default snaplen";
    EXPECT_GE(frame.realtime_us, begin_us - 1000);
    EXPECT_LE(frame.realtime_us, end_us + 1000);
    got.push_back(frame.bytes);
    if (std::equal(mac_a.octets.begin(), mac_a.octets.end(), frame.bytes.begin() + 6)) {
      ++from_a;
    }
    if (std::equal(mac_a.octets.begin(), mac_a.octets.end(), frame.bytes.begin())) {
      ++to_a;
    }
  }
  // Each frame was delivered before the next was sent: the file is in order.
  const std::vector<std::vector<std::uint8_t>> expected{a_to_b, b_to_a, a_to_helper, helper_to_a,
                                                        a_to_b_full};
  EXPECT_EQ(got, expected);
  EXPECT_EQ(from_a, 3U);
  EXPECT_EQ(to_a, 2U);
  // The connection closed: the capture ended and its memory went.
  EXPECT_TRUE(eventually([&] { return captures(kA) == 0; }, kBound));
}

TEST_F(CaptureTest, SnaplenKeepsTheFirstBytesAndTheLengthOnTheWire) {
  VifctlProcess vifctl(
      capture_arguments({"vif2.0", "-w", file("b.pcap").string(), "-c", "1", "--snaplen", "64"}),
      file("vifctl.err"));
  ASSERT_TRUE(eventually([&] { return captures(kB) == 1; }, kBound)) << vifctl.stderr_text();
  const auto frame = ethernet_frame(b().mac(), a().mac(), 1000, 7);
  deliver(a(), b(), frame);
  const auto status = vifctl.wait(kBound);
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0) << vifctl.stderr_text();
  const auto pcap = read_pcap(file("b.pcap"));
  ASSERT_TRUE(pcap);
  EXPECT_EQ(pcap->snaplen, 64);
  ASSERT_EQ(pcap->frames.size(), 1U);
  EXPECT_EQ(pcap->frames[0].length, 1000U);
  EXPECT_EQ(pcap->frames[0].bytes, std::vector<std::uint8_t>(frame.begin(), frame.begin() + 64));
}

// -w -: the pcap stream on stdout (vifctl capture 3.0 -w - | tcpdump -r -).
TEST_F(CaptureTest, DashWritesThePcapStreamToStdout) {
  VifctlProcess vifctl(capture_arguments({"vif1.0", "-w", "-", "-c", "2"}), file("vifctl.err"),
                       file("stdout.pcap"));
  ASSERT_TRUE(eventually([&] { return captures(kA) == 1; }, kBound)) << vifctl.stderr_text();
  const auto out = ethernet_frame(b().mac(), a().mac(), 700, 11);
  const auto in = ethernet_frame(a().mac(), b().mac(), 90, 12);
  deliver(a(), b(), out);
  deliver(b(), a(), in);
  const auto status = vifctl.wait(kBound);
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0) << vifctl.stderr_text();
  const auto pcap = read_pcap(file("stdout.pcap"));
  ASSERT_TRUE(pcap);
  ASSERT_EQ(pcap->frames.size(), 2U);
  EXPECT_EQ(pcap->frames[0].bytes, out);
  EXPECT_EQ(pcap->frames[1].bytes, in);
}

TEST_F(CaptureTest, SigintEndsTheCaptureWithACompleteFile) {
  VifctlProcess vifctl(capture_arguments({"1/0", "-w", file("int.pcap").string()}),
                       file("vifctl.err"));
  ASSERT_TRUE(eventually([&] { return captures(kA) == 1; }, kBound)) << vifctl.stderr_text();
  const auto frame = ethernet_frame(b().mac(), a().mac(), 300, 8);
  deliver(a(), b(), frame);
  // The frame is in the file once vifctl flushed its batch.
  ASSERT_TRUE(eventually([&] {
    const auto size = std::filesystem::file_size(file("int.pcap"));
    return size >= 24 + 16 + frame.size();
  }));
  vifctl.signal(SIGINT);
  const auto status = vifctl.wait(kBound);
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0) << vifctl.stderr_text();
  EXPECT_NE(vifctl.stderr_text().find("1 frames captured from vif1.0"), std::string::npos)
      << vifctl.stderr_text();
  const auto pcap = read_pcap(file("int.pcap"));
  ASSERT_TRUE(pcap);
  ASSERT_EQ(pcap->frames.size(), 1U);
  EXPECT_EQ(pcap->frames[0].bytes, frame);
}

TEST_F(CaptureTest, TheVifDetachingEndsItsCaptureWithAnErrorNamingIt) {
  VifctlProcess vifctl(capture_arguments({"1.0", "-w", file("gone.pcap").string()}),
                       file("vifctl.err"));
  ASSERT_TRUE(eventually([&] { return captures(kA) == 1; }, kBound)) << vifctl.stderr_text();
  const auto frame = ethernet_frame(b().mac(), a().mac(), 128, 9);
  deliver(a(), b(), frame);
  toolstack().request_detach(kA, 0);
  const auto status = vifctl.wait(kBound);
  ASSERT_TRUE(status) << "vifctl kept running after its vif went away";
  EXPECT_EQ(*status, 1);
  const std::string text = vifctl.stderr_text();
  EXPECT_NE(text.find("vif1.0 went away"), std::string::npos) << text;
  EXPECT_NE(text.find("1 frames captured from vif1.0"), std::string::npos) << text;
  const auto pcap = read_pcap(file("gone.pcap"));
  ASSERT_TRUE(pcap);
  ASSERT_EQ(pcap->frames.size(), 1U);
  EXPECT_EQ(pcap->frames[0].bytes, frame);
  // vifd serves the others as before.
  deliver(b(), helper(), ethernet_frame(helper().mac(), b().mac(), 100, 10));
}

TEST_F(CaptureTest, RefusalsNameTheVifOrTheSnaplenAndCapturesAreBounded) {
  const auto request = [](platform::DomId domid, std::uint32_t devid, std::size_t snaplen = 1500) {
    return nlohmann::json{
        {"command", "capture"}, {"domid", domid}, {"devid", devid}, {"snaplen", snaplen}};
  };
  const auto error_of = [](const CaptureConnection& connection) {
    EXPECT_FALSE(connection.answer().value("ok", true)) << connection.answer();
    return connection.answer().value("error", std::string());
  };
  EXPECT_NE(error_of(CaptureConnection(socket_path(), request(9, 0))).find("vif9.0"),
            std::string::npos);
  EXPECT_NE(error_of(CaptureConnection(socket_path(), request(kA, 0, 5))).find("snaplen 5"),
            std::string::npos);
  EXPECT_NE(error_of(CaptureConnection(socket_path(), request(kA, 0, 70000))).find("snaplen"),
            std::string::npos);

  // Two per vif, four per vifd.
  std::vector<std::unique_ptr<CaptureConnection>> held;
  const auto hold = [&](platform::DomId domid) {
    held.push_back(std::make_unique<CaptureConnection>(socket_path(), request(domid, 0)));
    EXPECT_TRUE(held.back()->answer().value("ok", false)) << held.back()->answer();
  };
  hold(kA);
  hold(kA);
  EXPECT_NE(error_of(CaptureConnection(socket_path(), request(kA, 0)))
                .find("vif1.0 is already being captured 2 times"),
            std::string::npos);
  hold(kB);
  hold(kB);
  EXPECT_NE(error_of(CaptureConnection(socket_path(), request(kHelper, 0))).find("4 captures"),
            std::string::npos);
  EXPECT_EQ(captures(kA), 2U);
  // Streams are not what makes room when more than kMaxConnections clients
  // connect: the idle clients are.
  std::vector<int> idle;
  for (std::size_t i = 0; i < ControlSocket::kMaxConnections + 4; ++i) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, socket_path().c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
    idle.push_back(fd);
  }
  EXPECT_TRUE(ControlProbe(socket_path()).ask(R"({"command":"stats"})"));
  for (const int fd : idle) {
    ::close(fd);
  }
  EXPECT_EQ(captures(kA), 2U);
  EXPECT_EQ(captures(kB), 2U);
  held.clear();
  EXPECT_TRUE(eventually([&] { return captures(kA) == 0 && captures(kB) == 0; }, kBound));
  CaptureConnection again(socket_path(), request(kHelper, 0));
  EXPECT_TRUE(again.answer().value("ok", false)) << again.answer();
}

TEST_F(CaptureTest, VifctlNamesTheVifItCannotCapture) {
  VifctlProcess vifctl(capture_arguments({"9.0", "-w", file("none.pcap").string()}),
                       file("vifctl.err"));
  const auto status = vifctl.wait(kBound);
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 1);
  EXPECT_NE(vifctl.stderr_text().find("vif9.0"), std::string::npos) << vifctl.stderr_text();
  EXPECT_FALSE(std::filesystem::exists(file("none.pcap"))) << "no file for a refused capture";
}

}  // namespace
}  // namespace vifd::backend::hostile
