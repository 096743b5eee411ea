// vif-sim: a simulated Xen host. Without a command it runs the host (its
// xenstored) in the foreground; the commands manage domains as xl would.

#include <exception>
#include <iostream>

#include "common/cli/command_line.h"
#include "xenstore-tools/lib/xenstored/vif_sim.h"

int main(int argc, char** argv) {
  CLI::App app{"vif-sim: a simulated Xen host (xenstored, grant tables, event channels)"};
  std::string dir;
  app.add_option("--dir", dir, "host directory")->required();
  app.require_subcommand(0, 1);

  unsigned domid = 0;
  std::optional<std::string> name;
  auto* create = app.add_subcommand("create", "create and introduce a domain (as xl create)");
  create->add_option("domid", domid, "domain id")->required()->check(CLI::Range(1, 32751));
  create->add_option("--name", name, "domain name (default domu-<domid>)");

  auto* destroy = app.add_subcommand("destroy", "release and destroy a domain (as xl destroy)");
  destroy->add_option("domid", domid, "domain id")->required()->check(CLI::Range(1, 32751));

  app.add_subcommand("list", "list domains");

  std::optional<unsigned> stats_domid;
  bool json = false;
  auto* stats = app.add_subcommand("stats", "hypercall counters");
  stats->add_option("domid", stats_domid, "domain id (default: all)")->check(CLI::Range(0, 32751));
  stats->add_flag("--json", json, "print JSON");

  vifd::cli::add_common_flags(app, "vif-sim");
  if (const auto exit_code = vifd::cli::parse(app, argc, argv)) {
    return *exit_code;
  }

  namespace xsd = vifd::xenstored;
  const auto d = static_cast<vifd::platform::DomId>(domid);
  try {
    if (create->parsed()) {
      xsd::create_domain_command(dir, d, name, std::cout);
    } else if (destroy->parsed()) {
      xsd::destroy_domain_command(dir, d, std::cout);
    } else if (app.got_subcommand("list")) {
      xsd::list_command(dir, std::cout);
    } else if (stats->parsed()) {
      std::optional<vifd::platform::DomId> which;
      if (stats_domid) which = static_cast<vifd::platform::DomId>(*stats_domid);
      xsd::stats_command(dir, which, json, std::cout);
    } else {
      xsd::run_host(dir, std::cout);
    }
  } catch (const std::exception& e) {
    std::cerr << "vif-sim: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
