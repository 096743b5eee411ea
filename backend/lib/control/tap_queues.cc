#include "backend/lib/control/tap_queues.h"

#include <fmt/format.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace vifd::backend {

TapQueueAttachment::TapQueueAttachment(const net::TapDevice& tap)
    : attached_(tap.queue_count(), true) {}

void TapQueueAttachment::use_first(const net::TapDevice& tap, std::size_t count) {
  // A single-queue TAP has nothing to steer (and refuses TUNSETQUEUE).
  if (attached_.size() <= 1) {
    return;
  }
  for (std::size_t queue = 0; queue < attached_.size(); ++queue) {
    const bool wanted = queue < count;
    if (attached_[queue] == wanted) {
      continue;
    }
    ifreq request{};
    request.ifr_flags = static_cast<short>(wanted ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE);
    if (::ioctl(tap.queue_fd(queue), TUNSETQUEUE, &request) != 0) {
      throw std::system_error(errno, std::generic_category(),
                              fmt::format("{}: TUNSETQUEUE {} queue {}", tap.name(),
                                          wanted ? "attach" : "detach", queue));
    }
    attached_[queue] = wanted;
  }
}

}  // namespace vifd::backend
