/*
 * Bodies in shared memory that a plain TCP socket can send without a copy.
 *
 * sharedBody(length) maps a new memfd and returns [buffer, fd]: a Buffer over
 * the mapping, which the caller fills, and the descriptor of the same bytes.
 * When the garbage collector frees the buffer, the mapping is unmapped and
 * the descriptor closed. It returns undefined when the process already has
 * as many as body_limit() allows, or when the kernel refuses.
 *
 * sendHeadAndBody(socketFd, head, bodyFd, length) writes `head` and then the
 * first `length` bytes of bodyFd to a non-blocking socket, with send(2) and
 * sendfile(2), and returns how many bytes the kernel took before it would
 * have blocked or failed. The caller writes whatever is left the usual way,
 * and its error, if any, comes from that write. On a link with segments of
 * 8 KiB or more (loopback, jumbo frames), a response longer than one
 * segment sends its odd part first (see first_part_length).
 *
 * queuedBytes(socketFd) returns the bytes in the socket's send queue that
 * the peer has not acknowledged yet (SIOCOUTQ), or -1 when it cannot tell.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

/* At most this many bodies, and at most a quarter of the descriptors the process may open. */
#define MAX_LIVE_BODIES 4096

typedef struct {
  int fd;
  size_t length;
} body_mapping;

static int live_bodies = 0;
static int max_live_bodies = -1;

static int body_limit(void) {
  if (max_live_bodies >= 0) return max_live_bodies;
  struct rlimit limit;
  max_live_bodies = MAX_LIVE_BODIES;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur / 4 < MAX_LIVE_BODIES) {
    max_live_bodies = (int)(limit.rlim_cur / 4);
  }
  return max_live_bodies;
}

static void release_body(napi_env env, void* data, void* hint) {
  body_mapping* mapping = hint;
  munmap(data, mapping->length);
  close(mapping->fd);
  int64_t ignored;
  napi_adjust_external_memory(env, -(int64_t)mapping->length, &ignored);
  live_bodies--;
  free(mapping);
}

static napi_value undefined_value(napi_env env) {
  napi_value value;
  napi_get_undefined(env, &value);
  return value;
}

static napi_value shared_body(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return undefined_value(env);
  if (napi_get_value_int64(env, argv[0], &length) != napi_ok || length <= 0) return undefined_value(env);
  if (live_bodies >= body_limit()) return undefined_value(env);

  int fd = memfd_create("portico-body", MFD_CLOEXEC);
  if (fd < 0) return undefined_value(env);
  if (ftruncate(fd, length) != 0) {
    close(fd);
    return undefined_value(env);
  }
  void* data = mmap(NULL, (size_t)length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) {
    close(fd);
    return undefined_value(env);
  }

  body_mapping* mapping = malloc(sizeof(body_mapping));
  if (mapping == NULL) {
    munmap(data, (size_t)length);
    close(fd);
    return undefined_value(env);
  }
  mapping->fd = fd;
  mapping->length = (size_t)length;
  napi_value buffer;
  if (napi_create_external_buffer(env, (size_t)length, data, release_body, mapping, &buffer) != napi_ok) {
    munmap(data, (size_t)length);
    close(fd);
    free(mapping);
    return undefined_value(env);
  }

  live_bodies++;
  int64_t ignored;
  napi_adjust_external_memory(env, length, &ignored);
  napi_value result, descriptor;
  napi_create_array_with_length(env, 2, &result);
  napi_create_int32(env, fd, &descriptor);
  napi_set_element(env, result, 0, buffer);
  napi_set_element(env, result, 1, descriptor);
  return result;
}

/* Segments at least this long mean the link is local or uses jumbo frames. */
#define LARGE_SEGMENT_BYTES 8192
#define HEAD_ALONE (-1)

/*
 * Returns how many body bytes to send with the head before the rest: 0 to
 * send the body in one call, HEAD_ALONE to send the head on its own.
 *
 * The kernel cuts a response into MSS-long segments from the front, so a
 * response a little over one segment leaves as a full segment followed at
 * once by a short one. A pacing congestion control such as BBR spaces
 * segments by their length over the pacing rate. The short segment is due
 * too early, so the kernel sends it from a timer. Sent first, the short
 * segment's gap is short, and it has passed by the time the next call has
 * read the full segment's pages. On loopback with BBR this removed almost
 * every pacing timer from 100 KiB hits. Ordinary segments are joined into
 * large packets anyway, where an extra short packet would cost more than it
 * saves.
 */
static int64_t first_part_length(int socket_fd, size_t head_length, int64_t length) {
  int64_t total = (int64_t)head_length + length;
  if (total <= LARGE_SEGMENT_BYTES) return 0;
  int mss = 0;
  socklen_t mss_size = sizeof(mss);
  if (getsockopt(socket_fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &mss_size) != 0) return 0;
  if (mss < LARGE_SEGMENT_BYTES || total <= mss) return 0;
  int64_t remainder = total % mss;
  if (remainder == 0) return 0;
  return remainder > (int64_t)head_length ? remainder - (int64_t)head_length : HEAD_ALONE;
}

static napi_value send_head_and_body(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t socket_fd, body_fd;
  int64_t length;
  void* head;
  size_t head_length;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_int32(env, argv[0], &socket_fd) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &head, &head_length) != napi_ok ||
      napi_get_value_int32(env, argv[2], &body_fd) != napi_ok ||
      napi_get_value_int64(env, argv[3], &length) != napi_ok || length < 0) {
    napi_create_int64(env, 0, &result);
    return result;
  }
  int64_t first = first_part_length(socket_fd, head_length, length);
  // MSG_MORE keeps the head back until the body follows it.
  int head_flags = (first == HEAD_ALONE ? 0 : MSG_MORE) | MSG_DONTWAIT | MSG_NOSIGNAL;
  int64_t sent = 0;
  while ((size_t)sent < head_length) {
    ssize_t n = send(socket_fd, (char*)head + sent, head_length - (size_t)sent, head_flags);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) goto done;
    sent += n;
  }
  off_t offset = 0;
  while (offset < length) {
    size_t count = (size_t)(offset < first ? first - offset : length - offset);
    ssize_t n = sendfile(socket_fd, body_fd, &offset, count);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
  }
  sent += offset;
done:
  napi_create_int64(env, sent, &result);
  return result;
}

static napi_value queued_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t socket_fd;
  int queued = -1;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1 &&
      napi_get_value_int32(env, argv[0], &socket_fd) == napi_ok && ioctl(socket_fd, SIOCOUTQ, &queued) != 0) {
    queued = -1;
  }
  napi_create_int32(env, queued, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value function;
  napi_create_function(env, "sharedBody", NAPI_AUTO_LENGTH, shared_body, NULL, &function);
  napi_set_named_property(env, exports, "sharedBody", function);
  napi_create_function(env, "sendHeadAndBody", NAPI_AUTO_LENGTH, send_head_and_body, NULL, &function);
  napi_set_named_property(env, exports, "sendHeadAndBody", function);
  napi_create_function(env, "queuedBytes", NAPI_AUTO_LENGTH, queued_bytes, NULL, &function);
  napi_set_named_property(env, exports, "queuedBytes", function);
  return exports;
}
