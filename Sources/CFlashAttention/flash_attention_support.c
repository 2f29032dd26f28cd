// The parts of flash_attention.h that are plain C: the per-thread error message (C's
// _Thread_local, so each thread sees the message of its own last call, with nothing to allocate
// or free) and the version, taken from the header so the two cannot drift apart.
#include <string.h>

#include "flash_attention_internal.h"

#define FA_STRINGIFY_(x) #x
#define FA_STRINGIFY(x) FA_STRINGIFY_(x)

enum { message_capacity = 4096 };
static _Thread_local char last_error[message_capacity];

void fa_internal_set_last_error(const char *message) {
  if (message == NULL) {
    last_error[0] = '\0';
    return;
  }
  strncpy(last_error, message, message_capacity - 1);
  last_error[message_capacity - 1] = '\0';
}

const char *fa_last_error_message(void) { return last_error; }

const char *fa_version(void) {
  return FA_STRINGIFY(FA_VERSION_MAJOR) "." FA_STRINGIFY(FA_VERSION_MINOR) "." FA_STRINGIFY(FA_VERSION_PATCH);
}

int32_t fa_version_number(void) { return FA_VERSION_MAJOR * 10000 + FA_VERSION_MINOR * 100 + FA_VERSION_PATCH; }
