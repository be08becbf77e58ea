/*
 * Listening sockets of each edge worker's own, bound with SO_REUSEPORT.
 *
 * reusePortSocket(address, port) creates a non-blocking TCP socket with
 * SO_REUSEADDR and SO_REUSEPORT set, binds it to the numeric address and the
 * port, and returns its descriptor. The caller hands the descriptor to
 * libuv, which listens on it. Every worker binds its own socket to the same
 * address and port, and the kernel spreads new connections over them by a
 * hash of the connection's addresses and ports, so no process has to accept
 * for another. Node.js 20 cannot set SO_REUSEPORT itself.
 *
 * On failure it throws an Error whose `code` is the errno name (EADDRINUSE,
 * EACCES, EADDRNOTAVAIL, ...) and whose `errno` is the negative errno, as
 * Node.js's own socket errors have.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

static const char* errno_name(int error) {
  switch (error) {
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EACCES: return "EACCES";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, const char* call, int error, const char* address, int port) {
  char message[320];
  snprintf(message, sizeof message, "%s %s %s:%d: %s", call, errno_name(error), address, port, strerror(error));
  napi_value code, text, exception, number;
  napi_create_string_utf8(env, errno_name(error), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &exception);
  napi_create_int32(env, -error, &number);
  napi_set_named_property(env, exception, "errno", number);
  napi_set_named_property(env, exception, "code", code);
  napi_create_string_utf8(env, call, NAPI_AUTO_LENGTH, &text);
  napi_set_named_property(env, exception, "syscall", text);
  napi_throw(env, exception);
  return NULL;
}

static napi_value reuse_port_socket(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char address[256];
  size_t address_length = 0;
  int32_t port = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], address, sizeof address, &address_length) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || port < 0 || port > 65535) {
    napi_throw_type_error(env, NULL, "reusePortSocket(address, port) takes a numeric address and a port");
    return NULL;
  }
  if (address_length + 1 >= sizeof address) {
    napi_throw_type_error(env, NULL, "reusePortSocket: the address is too long");
    return NULL;
  }

  /* Numeric only: the caller resolves names first, as net.Server.listen does. */
  struct addrinfo hints, *found = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  char service[8];
  snprintf(service, sizeof service, "%d", (int)port);
  if (getaddrinfo(address, service, &hints, &found) != 0 || found == NULL) {
    if (found != NULL) freeaddrinfo(found);
    return throw_errno(env, "getaddrinfo", EINVAL, address, port);
  }

  int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int error = errno;
    freeaddrinfo(found);
    return throw_errno(env, "socket", error, address, port);
  }
  int on = 1, off = 0;
  const char* failed = NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) failed = "setsockopt";
  else if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) failed = "setsockopt";
  /* An IPv6 wildcard takes IPv4 connections too, whatever the net.ipv6.bindv6only setting, as with libuv. */
  else if (found->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) failed = "setsockopt";
  else if (bind(fd, found->ai_addr, found->ai_addrlen) != 0) failed = "bind";
  int error = errno;
  freeaddrinfo(found);
  if (failed != NULL) {
    close(fd);
    return throw_errno(env, failed, error, address, port);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value function;
  napi_create_function(env, "reusePortSocket", NAPI_AUTO_LENGTH, reuse_port_socket, NULL, &function);
  napi_set_named_property(env, exports, "reusePortSocket", function);
  return exports;
}
