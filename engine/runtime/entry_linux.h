// What the container entry (entry_linux.c) shares with the C init
// (cinit_linux.c).
#include <linux/filter.h>
#include <stdint.h>

extern void (*berth_entry_fail)(const char *what, int err);
struct sock_filter *berth_read_program(int fd, uint32_t *flags, uint16_t *len);
void berth_install_filter(struct sock_filter *filter, uint16_t len, uint32_t flags);
void berth_drop_bounding(const char *spec);
void berth_set_caps(const char *spec);
