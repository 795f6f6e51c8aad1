/*
** The production guest's extensions: none (see guest_ext.h).
*/
#include "guest_ext.h"

int guest_ext_init(const nk_chan *ch, size_t io_size, char *err, size_t errlen) {
  return 0;
}

int guest_ext_kernel(nk_kernel *k, char *err, size_t errlen) { return 0; }

void guest_ext_after_serve(uint32_t seq) {}
