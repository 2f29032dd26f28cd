/* Not part of the C interface: what the Swift implementation of flash_attention.h calls. */
#ifndef FLASH_ATTENTION_INTERNAL_H
#define FLASH_ATTENTION_INTERNAL_H

#include "flash_attention.h"

/* Copies `message` (NUL-terminated; truncated to fit) into this thread's error buffer. */
void fa_internal_set_last_error(const char *message);

#endif
