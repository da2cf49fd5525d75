#ifndef ROAS_CNATS_SHIM_H
#define ROAS_CNATS_SHIM_H

// The NATS C client (libnats 3.x): core NATS and JetStream. pkg-config gives no include flags;
// Debian installs the header as /usr/include/nats/nats.h.
#include <nats/nats.h>

#endif
