#ifndef ROAS_CZSTD_SHIM_H
#define ROAS_CZSTD_SHIM_H

// Zstandard (libzstd 1.5): the compression of the parts `roas serve --nats` appends to the log.
// Debian: `apt-get install libzstd-dev`.
#include <zstd.h>

#endif
