// e2e-xdp-count: attaches a counting XDP program to a guest's netfront
// interface, so the real-Xen harness can show that the stock Linux netfront,
// with an XDP program running, asks vifd for RX headroom (xdp-headroom) and
// that every frame vifd delivers with that headroom reaches the program
// intact. The program is nine instructions built here rather than an ELF
// object: the guest has no compiler and the harness no BPF toolchain.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include "common/cli/command_line.h"

namespace {

[[noreturn]] void fail(const std::string& what, int error) {
  throw std::system_error(error < 0 ? -error : error, std::generic_category(), what);
}

unsigned interface_index(const std::string& name) {
  const unsigned index = ::if_nametoindex(name.c_str());
  if (index == 0) {
    fail("interface " + name, errno);
  }
  return index;
}

constexpr bpf_insn insn(std::uint8_t code, std::uint8_t dst, std::uint8_t src, std::int16_t off,
                        std::int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

// counts[0] += 1 for every frame, then XDP_PASS.
std::array<bpf_insn, 11> counting_program(int map_fd) {
  return {
      insn(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -4, 0),  // key = 0
      insn(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, map_fd),
      insn(0, 0, 0, 0, 0),                                             // ld_imm64, high half
      insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),  // r2 = &key
      insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),
      insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
      insn(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 2, 0),  // no entry: pass
      insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, 1),
      insn(BPF_STX | BPF_ATOMIC | BPF_DW, BPF_REG_0, BPF_REG_1, 0, BPF_ADD),
      insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS),
      insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
}

void attach(const std::string& ifname, const std::string& pin) {
  const unsigned index = interface_index(ifname);
  const int map_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "xdp_count", sizeof(std::uint32_t),
                                    sizeof(std::uint64_t), 1, nullptr);
  if (map_fd < 0) {
    fail("bpf_map_create", map_fd);
  }
  const auto program = counting_program(map_fd);
  std::array<char, 4096> verifier_log{};
  LIBBPF_OPTS(bpf_prog_load_opts, options, .log_level = 1, .log_size = verifier_log.size(),
              .log_buf = verifier_log.data());
  const int prog_fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_count", "GPL", program.data(),
                                    program.size(), &options);
  if (prog_fd < 0) {
    std::fprintf(stderr, "verifier: %s\n", verifier_log.data());
    fail("bpf_prog_load", prog_fd);
  }
  // Driver mode: the program must run inside netfront, which is what makes
  // it ask the backend for headroom; generic mode would not.
  if (const int rc = bpf_xdp_attach(static_cast<int>(index), prog_fd, XDP_FLAGS_DRV_MODE, nullptr);
      rc < 0) {
    fail("attaching XDP (driver mode) to " + ifname, rc);
  }
  if (const int rc = bpf_obj_pin(map_fd, pin.c_str()); rc < 0) {
    fail("pinning the map at " + pin, rc);
  }
  std::uint32_t id = 0;
  if (const int rc = bpf_xdp_query_id(static_cast<int>(index), XDP_FLAGS_DRV_MODE, &id); rc < 0) {
    fail("querying XDP on " + ifname, rc);
  }
  std::printf("attached XDP program id %u to %s (driver mode), counter pinned at %s\n", id,
              ifname.c_str(), pin.c_str());
}

void read_count(const std::string& pin) {
  const int map_fd = bpf_obj_get(pin.c_str());
  if (map_fd < 0) {
    fail("opening the pinned map " + pin, map_fd);
  }
  const std::uint32_t key = 0;
  std::uint64_t count = 0;
  if (const int rc = bpf_map_lookup_elem(map_fd, &key, &count); rc < 0) {
    fail("reading " + pin, rc);
  }
  std::printf("%llu\n", static_cast<unsigned long long>(count));
}

void detach(const std::string& ifname) {
  const unsigned index = interface_index(ifname);
  if (const int rc = bpf_xdp_detach(static_cast<int>(index), XDP_FLAGS_DRV_MODE, nullptr); rc < 0) {
    fail("detaching XDP from " + ifname, rc);
  }
  std::printf("detached XDP from %s\n", ifname.c_str());
}

int run(int argc, char** argv) {
  CLI::App app{"e2e-xdp-count: a counting XDP program on a netfront interface (real-Xen tests)"};
  app.require_subcommand(1);
  std::string ifname;
  std::string pin;
  auto* attach_cmd = app.add_subcommand("attach", "load, attach in driver mode, pin the counter");
  attach_cmd->add_option("interface", ifname)->required();
  attach_cmd->add_option("pin", pin, "bpffs path for the counter map")->required();
  auto* read_cmd = app.add_subcommand("read", "print the number of frames the program saw");
  read_cmd->add_option("pin", pin)->required();
  auto* detach_cmd = app.add_subcommand("detach", "remove the driver-mode program");
  detach_cmd->add_option("interface", ifname)->required();
  vifd::cli::add_common_flags(app, "e2e-xdp-count");
  if (const auto exit_code = vifd::cli::parse(app, argc, argv)) {
    return *exit_code;
  }
  if (attach_cmd->parsed()) {
    attach(ifname, pin);
  }
  if (read_cmd->parsed()) {
    read_count(pin);
  }
  if (detach_cmd->parsed()) {
    detach(ifname);
  }
  return vifd::cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "e2e-xdp-count: %s\n", error.what());
    return vifd::cli::kExitFailure;
  }
}
