/*
 * TLS for viewer connections, run by OpenSSL in C on the connection's own
 * descriptor and polled on Node.js's event loop, so that JavaScript handles
 * plaintext only. OpenSSL is the copy inside Node.js, which exports it to
 * addons. Node.js's TLS socket passes every record through its stream layers
 * and JavaScript callbacks. Here a read costs one call into JavaScript, and a
 * response one call out of it.
 *
 * createContext(certPem, keyPem, cipherList, cipherSuites) returns a context
 *   handle, or throws when the pair is invalid.
 * setHandler(fn) sets the function that receives every event:
 *   fn(owner, EVENT_SECURE, alpn) once the handshake is done (1: h2, 2: http/1.1, 0: none),
 *   fn(owner, EVENT_DATA, length) with plaintext at the start of the shared read buffer,
 *     which the next read overwrites,
 *   fn(owner, EVENT_DRAIN, 0) once every byte written has left for the kernel,
 *   fn(owner, EVENT_END, 0) when the viewer closed its side,
 *   fn(owner, EVENT_CLOSE, reason) once the connection is closed (a CLOSE_ value).
 * readBuffer() returns the shared read buffer.
 * adopt(context, fd, firstBytes, owner) takes a duplicate of a connected socket's descriptor,
 *   with the bytes already read from it, and returns the connection handle. `owner` is passed
 *   back with each event. pump(connection) then starts the handshake.
 * write(connection, buffers) encrypts and sends the buffers, in records of up to 16 KiB, and
 *   returns the bytes still waiting in the process.
 * pause(connection) and resume(connection) stop and restart reading. resume returns true when
 *   OpenSSL has bytes buffered that the socket will not signal again. pump(connection), called
 *   outside any event, delivers them.
 * end(connection) sends close_notify and a FIN once everything written has left.
 * destroy(connection) closes the connection at once.
 * details(connection) returns [protocol version, cipher name, descriptor, bytes read].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define READ_BUFFER_BYTES (64 * 1024)
/* One TLS record's plaintext at most (RFC 8446 section 5.1). */
#define RECORD_BYTES (16 * 1024)

enum { EVENT_SECURE = 1, EVENT_DATA = 2, EVENT_DRAIN = 3, EVENT_END = 4, EVENT_CLOSE = 5 };
enum { CLOSE_NORMAL = 0, CLOSE_HANDSHAKE_FAILED = 1, CLOSE_TLS_ERROR = 2, CLOSE_SOCKET_ERROR = 3 };

typedef struct {
  uv_poll_t poll;
  int fd;
  SSL *ssl;
  napi_ref owner;
  /* Bytes read from the socket before adopt(), given to OpenSSL first. */
  unsigned char *first;
  size_t first_length;
  size_t first_offset;
  /* Plaintext that OpenSSL has not taken yet: `pending_length` bytes from `pending_offset`. */
  unsigned char *pending;
  size_t pending_offset;
  size_t pending_length;
  size_t pending_capacity;
  uint64_t bytes_read;
  int events;
  int secure;
  int paused;
  int ending;
  int shut;
  int peer_ended;
  int closed;
  int want_drain;
  /* Whether the last read from the socket found fewer bytes than it asked for. */
  int socket_drained;
  int in_callback;
  /* The uv handle and the JavaScript handle each hold one reference. */
  int references;
} connection;

static napi_env handler_env;
static napi_ref handler;
static napi_ref read_buffer_ref;
static unsigned char *read_buffer;
static napi_async_context async_context;
static BIO_METHOD *socket_method;
static unsigned char staging[RECORD_BYTES];

static void release(connection *c) {
  if (--c->references > 0) return;
  free(c->pending);
  free(c->first);
  free(c);
}

/* Calls the handler as Node.js calls its own stream callbacks, so queued promise jobs and ticks run after it. */
static void emit(connection *c, int event, int value) {
  if (handler == NULL || c->owner == NULL) return;
  napi_env env = handler_env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value function, owner, args[3], result, global;
  napi_get_reference_value(env, handler, &function);
  napi_get_reference_value(env, c->owner, &owner);
  napi_get_global(env, &global);
  args[0] = owner;
  napi_create_int32(env, event, &args[1]);
  napi_create_int32(env, value, &args[2]);
  c->in_callback++;
  if (napi_make_callback(env, async_context, global, function, 3, args, &result) != napi_ok) {
    /* An exception of the handler goes to the process's uncaughtException, as one in a stream callback would. */
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  c->in_callback--;
  napi_close_handle_scope(env, scope);
}

/* BIO that reads the bytes given at adopt() first, then the socket, and writes to the socket. */
static int bio_read(BIO *bio, char *out, int length) {
  connection *c = BIO_get_data(bio);
  BIO_clear_retry_flags(bio);
  if (c->first_offset < c->first_length) {
    size_t n = c->first_length - c->first_offset;
    if (n > (size_t)length) n = (size_t)length;
    memcpy(out, c->first + c->first_offset, n);
    c->first_offset += n;
    c->socket_drained = 0;
    return (int)n;
  }
  ssize_t n;
  do {
    n = read(c->fd, out, (size_t)length);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    c->bytes_read += (uint64_t)n;
    c->socket_drained = n < length;
    return (int)n;
  }
  if (n == 0) {
    c->peer_ended = 1;
    return 0;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    c->socket_drained = 1;
    BIO_set_retry_read(bio);
  }
  return -1;
}

static int bio_write(BIO *bio, const char *data, int length) {
  connection *c = BIO_get_data(bio);
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = send(c->fd, data, (size_t)length, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return (int)n;
  if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(bio);
  return -1;
}

static long bio_ctrl(BIO *bio, int command, long number, void *pointer) {
  (void)bio;
  (void)number;
  (void)pointer;
  return command == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *bio) {
  BIO_set_init(bio, 1);
  return 1;
}

static void on_poll(uv_poll_t *handle, int status, int events);

static void watch(connection *c) {
  if (c->closed) return;
  int events = 0;
  /* Once this side has shut, reads only wait for the viewer to close, and are dropped. */
  if (!c->peer_ended && (!c->paused || !c->secure || c->shut)) events |= UV_READABLE;
  if (c->pending_length > 0 || (c->ending && !c->shut)) events |= UV_WRITABLE;
  if (events == c->events) return;
  c->events = events;
  if (events == 0) uv_poll_stop(&c->poll);
  else uv_poll_start(&c->poll, events, on_poll);
}

static void on_handle_closed(uv_handle_t *handle) {
  release(handle->data);
}

/* Closes the connection; `notify` is 0 only where JavaScript must not run, as in a finalizer. */
static void close_socket(connection *c, int reason, int notify) {
  if (c->closed) return;
  c->closed = 1;
  uv_poll_stop(&c->poll);
  SSL_free(c->ssl);
  c->ssl = NULL;
  close(c->fd);
  c->fd = -1;
  c->pending_length = 0;
  if (notify) emit(c, EVENT_CLOSE, reason);
  if (c->owner != NULL) {
    napi_delete_reference(handler_env, c->owner);
    c->owner = NULL;
  }
  uv_close((uv_handle_t *)&c->poll, on_handle_closed);
}

static void close_connection(connection *c, int reason) {
  close_socket(c, reason, 1);
}

static void append_pending(connection *c, const unsigned char *data, size_t length) {
  if (c->pending_offset > 0 && c->pending_offset + c->pending_length + length > c->pending_capacity) {
    memmove(c->pending, c->pending + c->pending_offset, c->pending_length);
    c->pending_offset = 0;
  }
  size_t needed = c->pending_offset + c->pending_length + length;
  if (needed > c->pending_capacity) {
    size_t capacity = c->pending_capacity == 0 ? RECORD_BYTES : c->pending_capacity;
    while (capacity < needed) capacity *= 2;
    c->pending = realloc(c->pending, capacity);
    c->pending_capacity = capacity;
  }
  memcpy(c->pending + c->pending_offset + c->pending_length, data, length);
  c->pending_length += length;
}

/* Hands `data` to OpenSSL; returns the bytes it took, or -1 when the connection failed. */
static ssize_t encrypt(connection *c, const unsigned char *data, size_t length) {
  size_t accepted = 0;
  while (accepted < length) {
    size_t chunk = length - accepted;
    if (chunk > RECORD_BYTES) chunk = RECORD_BYTES;
    size_t written = 0;
    if (SSL_write_ex(c->ssl, data + accepted, chunk, &written) > 0) {
      accepted += written;
      continue;
    }
    int error = SSL_get_error(c->ssl, 0);
    ERR_clear_error();
    if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) return (ssize_t)accepted;
    return -1;
  }
  return (ssize_t)accepted;
}

/* Sends waiting plaintext, then close_notify when ending; returns -1 when the connection failed. */
static int flush(connection *c) {
  if (c->pending_length > 0) {
    ssize_t accepted = encrypt(c, c->pending + c->pending_offset, c->pending_length);
    if (accepted < 0) return -1;
    c->pending_offset += (size_t)accepted;
    c->pending_length -= (size_t)accepted;
    if (c->pending_length == 0) {
      c->pending_offset = 0;
      /* A connection that once queued a large response does not keep the room for good. */
      if (c->pending_capacity > 4 * RECORD_BYTES) {
        free(c->pending);
        c->pending = NULL;
        c->pending_capacity = 0;
      }
    }
  }
  if (c->pending_length == 0 && c->ending && !c->shut) {
    int result = SSL_shutdown(c->ssl);
    if (result < 0) {
      int error = SSL_get_error(c->ssl, result);
      ERR_clear_error();
      if (error == SSL_ERROR_WANT_WRITE) return 0;
    }
    c->shut = 1;
    shutdown(c->fd, SHUT_WR);
  }
  return 0;
}

/* Delivers decrypted plaintext until OpenSSL needs more from the socket, or reading pauses. */
static void deliver(connection *c) {
  while (!c->closed && (!c->paused || c->shut)) {
    size_t length = 0;
    if (SSL_read_ex(c->ssl, read_buffer, READ_BUFFER_BYTES, &length) > 0) {
      if (!c->shut) emit(c, EVENT_DATA, (int)length);
      /* Once OpenSSL has nothing more buffered and its last read emptied the socket, the poll
         reports the socket when more arrives, so no read is spent to find it empty. */
      if (c->closed || (c->socket_drained && !SSL_has_pending(c->ssl))) return;
      continue;
    }
    int error = SSL_get_error(c->ssl, 0);
    ERR_clear_error();
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return;
    if (error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && c->peer_ended)) {
      /* The viewer closed its side. Once this side has shut too, the connection is done. */
      c->peer_ended = 1;
      if (c->shut) {
        close_connection(c, CLOSE_NORMAL);
        return;
      }
      watch(c);
      emit(c, EVENT_END, 0);
      return;
    }
    close_connection(c, error == SSL_ERROR_SSL ? CLOSE_TLS_ERROR : CLOSE_SOCKET_ERROR);
    return;
  }
}

static void handshake(connection *c) {
  int result = SSL_do_handshake(c->ssl);
  if (result == 1) {
    c->secure = 1;
    if (c->first_offset == c->first_length) {
      free(c->first);
      c->first = NULL;
      c->first_length = c->first_offset = 0;
    }
    const unsigned char *alpn = NULL;
    unsigned int alpn_length = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_length);
    int protocol = 0;
    if (alpn_length == 2 && memcmp(alpn, "h2", 2) == 0) protocol = 1;
    else if (alpn_length == 8 && memcmp(alpn, "http/1.1", 8) == 0) protocol = 2;
    watch(c);
    emit(c, EVENT_SECURE, protocol);
    return;
  }
  int error = SSL_get_error(c->ssl, result);
  ERR_clear_error();
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
    if (c->peer_ended) close_connection(c, CLOSE_HANDSHAKE_FAILED);
    return;
  }
  close_connection(c, CLOSE_HANDSHAKE_FAILED);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  connection *c = handle->data;
  if (c->closed) return;
  if (status < 0) {
    close_connection(c, CLOSE_SOCKET_ERROR);
    return;
  }
  if (!c->secure) {
    handshake(c);
    if (c->closed || !c->secure) return;
  }
  if ((events & UV_WRITABLE) != 0 || c->pending_length > 0) {
    int had_pending = c->pending_length > 0;
    if (flush(c) < 0) {
      close_connection(c, CLOSE_SOCKET_ERROR);
      return;
    }
    watch(c);
    if (had_pending && c->pending_length == 0 && c->want_drain) {
      c->want_drain = 0;
      emit(c, EVENT_DRAIN, 0);
      if (c->closed) return;
    }
  }
  if ((events & UV_READABLE) != 0) deliver(c);
}

/* Returns the connection that a function's first argument names, or NULL. */
static connection *connection_argument(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  connection *c = NULL;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc < 1) return NULL;
  if (napi_get_value_external(env, args[0], (void **)&c) != napi_ok) return NULL;
  return c;
}

static void finalize_connection(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  connection *c = data;
  if (!c->closed) {
    /* An open connection keeps its owner, so this runs only as the process exits. */
    close_socket(c, CLOSE_NORMAL, 0);
  }
  release(c);
}

static void finalize_context(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  SSL_CTX_free(data);
}

static char *string_argument(napi_env env, napi_value value) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return NULL;
  char *text = malloc(length + 1);
  napi_get_value_string_utf8(env, value, text, length + 1, &length);
  return text;
}

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_length, const unsigned char *in,
                       unsigned int in_length, void *arg) {
  (void)ssl;
  (void)arg;
  /* The server's order decides, as with Node.js's ALPNProtocols: h2 first. */
  static const unsigned char protocols[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  if (SSL_select_next_proto((unsigned char **)out, out_length, protocols, sizeof protocols, in, in_length) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

static napi_value create_context(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "createContext(certPem, keyPem, cipherList, cipherSuites)");
    return NULL;
  }
  char *cert_pem = string_argument(env, args[0]);
  char *key_pem = string_argument(env, args[1]);
  char *cipher_list = string_argument(env, args[2]);
  char *cipher_suites = string_argument(env, args[3]);

  SSL_CTX *context = SSL_CTX_new(TLS_server_method());
  const char *failure = NULL;
  BIO *cert_bio = BIO_new_mem_buf(cert_pem, -1);
  BIO *key_bio = BIO_new_mem_buf(key_pem, -1);
  EVP_PKEY *key = PEM_read_bio_PrivateKey(key_bio, NULL, NULL, NULL);
  X509 *cert = PEM_read_bio_X509(cert_bio, NULL, NULL, NULL);
  if (context == NULL) failure = "could not create a TLS context";
  else if (cert == NULL || SSL_CTX_use_certificate(context, cert) != 1) failure = "invalid certificate";
  else if (key == NULL || SSL_CTX_use_PrivateKey(context, key) != 1) failure = "invalid private key";
  else if (SSL_CTX_check_private_key(context) != 1) failure = "the private key does not match the certificate";
  else {
    /* The rest of the chain, as Node.js takes it from the same PEM. */
    X509 *extra;
    while ((extra = PEM_read_bio_X509(cert_bio, NULL, NULL, NULL)) != NULL) {
      if (SSL_CTX_add0_chain_cert(context, extra) != 1) X509_free(extra);
    }
    if (SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) != 1 || SSL_CTX_set_cipher_list(context, cipher_list) != 1 ||
        SSL_CTX_set_ciphersuites(context, cipher_suites) != 1) {
      failure = "invalid cipher list";
    }
  }
  ERR_clear_error();

  X509_free(cert);
  EVP_PKEY_free(key);
  BIO_free(cert_bio);
  BIO_free(key_bio);
  free(cert_pem);
  free(key_pem);
  free(cipher_list);
  free(cipher_suites);

  if (failure != NULL) {
    SSL_CTX_free(context);
    napi_throw_error(env, NULL, failure);
    return NULL;
  }

  SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  /* Renegotiation lets a client make the server do handshakes at will. Node.js limits it, and this rejects it. */
  SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_alpn_select_cb(context, select_alpn, NULL);
  /* Whole reads of what the socket has, rather than a record header and then its body. */
  SSL_CTX_set_read_ahead(context, 1);
  napi_value handle;
  napi_create_external(env, context, finalize_context, NULL, &handle);
  return handle;
}

static napi_value set_handler(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (handler != NULL) napi_delete_reference(env, handler);
  handler_env = env;
  napi_create_reference(env, args[0], 1, &handler);
  if (async_context == NULL) {
    napi_value name;
    napi_create_string_utf8(env, "ViewerTls", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, NULL, name, &async_context);
  }
  return NULL;
}

static napi_value get_read_buffer(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value buffer;
  if (read_buffer_ref == NULL) {
    void *data;
    napi_create_buffer(env, READ_BUFFER_BYTES, &data, &buffer);
    read_buffer = data;
    napi_create_reference(env, buffer, 1, &read_buffer_ref);
    return buffer;
  }
  napi_get_reference_value(env, read_buffer_ref, &buffer);
  return buffer;
}

static napi_value adopt(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  SSL_CTX *context = NULL;
  int32_t fd = -1;
  if (argc < 4 || napi_get_value_external(env, args[0], (void **)&context) != napi_ok ||
      napi_get_value_int32(env, args[1], &fd) != napi_ok || read_buffer == NULL) {
    napi_throw_type_error(env, NULL, "adopt(context, fd, firstBytes, owner) after readBuffer()");
    return NULL;
  }
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    napi_throw_error(env, NULL, "could not duplicate the socket descriptor");
    return NULL;
  }
  fcntl(copy, F_SETFL, fcntl(copy, F_GETFL) | O_NONBLOCK);
  int enabled = 1;
  setsockopt(copy, IPPROTO_TCP, TCP_NODELAY, &enabled, sizeof enabled);
  connection *c = calloc(1, sizeof *c);
  c->fd = copy;
  c->references = 2;
  void *first = NULL;
  size_t first_length = 0;
  napi_valuetype type;
  napi_typeof(env, args[2], &type);
  if (type == napi_object && napi_get_buffer_info(env, args[2], &first, &first_length) == napi_ok && first_length > 0) {
    c->first = malloc(first_length);
    memcpy(c->first, first, first_length);
    c->first_length = first_length;
  }
  BIO *bio = BIO_new(socket_method);
  BIO_set_data(bio, c);
  c->ssl = SSL_new(context);
  SSL_set_bio(c->ssl, bio, bio);
  SSL_set_accept_state(c->ssl);
  napi_create_reference(env, args[3], 1, &c->owner);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &c->poll, c->fd);
  c->poll.data = c;
  watch(c);
  napi_value handle;
  napi_create_external(env, c, finalize_connection, NULL, &handle);
  return handle;
}

/* Encrypts and sends what the socket takes of `bytes`, and keeps the rest; returns -1 when the connection failed. */
static int send_or_keep(connection *c, const unsigned char *bytes, size_t length) {
  if (c->secure && c->pending_length == 0) {
    ssize_t accepted = encrypt(c, bytes, length);
    if (accepted < 0) return -1;
    bytes += accepted;
    length -= (size_t)accepted;
  }
  if (length > 0) append_pending(c, bytes, length);
  return 0;
}

static napi_value write_buffers(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  connection *c = NULL;
  napi_get_value_external(env, args[0], (void **)&c);
  napi_value result;
  if (c == NULL || c->closed || c->ending) {
    napi_create_int32(env, 0, &result);
    return result;
  }

  uint32_t count = 0;
  napi_get_array_length(env, args[1], &count);
  size_t staged = 0;
  int failed = 0;
  for (uint32_t i = 0; i < count && !failed; i++) {
    napi_value element;
    void *data;
    size_t length;
    napi_get_element(env, args[1], i, &element);
    if (napi_get_buffer_info(env, element, &data, &length) != napi_ok) continue;
    const unsigned char *bytes = data;
    /* Small pieces share a record: frame headers and the bodies of small responses. */
    while (length > 0 && !failed) {
      if (staged == 0 && length >= RECORD_BYTES) {
        failed = send_or_keep(c, bytes, length) < 0;
        break;
      }
      size_t room = RECORD_BYTES - staged;
      size_t n = length < room ? length : room;
      memcpy(staging + staged, bytes, n);
      staged += n;
      bytes += n;
      length -= n;
      if (staged == RECORD_BYTES) {
        failed = send_or_keep(c, staging, staged) < 0;
        staged = 0;
      }
    }
  }
  if (!failed && staged > 0) failed = send_or_keep(c, staging, staged) < 0;

  if (failed) {
    close_connection(c, CLOSE_SOCKET_ERROR);
    napi_create_int32(env, 0, &result);
    return result;
  }
  if (c->pending_length > 0) c->want_drain = 1;
  watch(c);
  napi_create_double(env, (double)c->pending_length, &result);
  return result;
}

static napi_value pause_reading(napi_env env, napi_callback_info info) {
  connection *c = connection_argument(env, info);
  if (c != NULL && !c->closed && !c->peer_ended) {
    c->paused = 1;
    watch(c);
  }
  return NULL;
}

static napi_value resume_reading(napi_env env, napi_callback_info info) {
  connection *c = connection_argument(env, info);
  int later = 0;
  if (c != NULL && !c->closed && c->paused) {
    c->paused = 0;
    watch(c);
    /* Records that OpenSSL read before the pause are not signalled by the socket again. */
    later = c->secure && !c->peer_ended && SSL_has_pending(c->ssl);
  }
  napi_value result;
  napi_get_boolean(env, later, &result);
  return result;
}

/*
 * Runs the handshake on the bytes given to adopt(), which the socket will not signal again, or
 * delivers what OpenSSL has buffered already, when resume() returned true.
 */
static napi_value pump(napi_env env, napi_callback_info info) {
  connection *c = connection_argument(env, info);
  if (c == NULL || c->closed || c->in_callback > 0) return NULL;
  if (!c->secure) {
    handshake(c);
    if (c->closed || !c->secure) return NULL;
  }
  if (!c->paused && !c->peer_ended) deliver(c);
  return NULL;
}

static napi_value end_connection(napi_env env, napi_callback_info info) {
  connection *c = connection_argument(env, info);
  if (c == NULL || c->closed || c->ending) return NULL;
  c->ending = 1;
  if (!c->secure) {
    close_connection(c, CLOSE_NORMAL);
    return NULL;
  }
  if (flush(c) < 0) close_connection(c, CLOSE_SOCKET_ERROR);
  else if (c->peer_ended && c->shut) close_connection(c, CLOSE_NORMAL);
  else watch(c);
  return NULL;
}

static napi_value destroy_connection(napi_env env, napi_callback_info info) {
  connection *c = connection_argument(env, info);
  if (c != NULL) close_connection(c, CLOSE_NORMAL);
  return NULL;
}

static napi_value details(napi_env env, napi_callback_info info) {
  connection *c = connection_argument(env, info);
  napi_value result, value;
  napi_create_array_with_length(env, 4, &result);
  if (c == NULL || c->closed) return result;
  napi_create_string_utf8(env, SSL_get_version(c->ssl), NAPI_AUTO_LENGTH, &value);
  napi_set_element(env, result, 0, value);
  const SSL_CIPHER *cipher = SSL_get_current_cipher(c->ssl);
  napi_create_string_utf8(env, cipher == NULL ? "" : SSL_CIPHER_get_name(cipher), NAPI_AUTO_LENGTH, &value);
  napi_set_element(env, result, 1, value);
  napi_create_int32(env, c->fd, &value);
  napi_set_element(env, result, 2, value);
  napi_create_double(env, (double)c->bytes_read, &value);
  napi_set_element(env, result, 3, value);
  return result;
}

static napi_value pending_bytes(napi_env env, napi_callback_info info) {
  connection *c = connection_argument(env, info);
  napi_value result;
  napi_create_double(env, c == NULL || c->closed ? 0 : (double)c->pending_length, &result);
  return result;
}

NAPI_MODULE_INIT() {
  if (socket_method == NULL) {
    socket_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "viewer socket");
    BIO_meth_set_read(socket_method, bio_read);
    BIO_meth_set_write(socket_method, bio_write);
    BIO_meth_set_ctrl(socket_method, bio_ctrl);
    BIO_meth_set_create(socket_method, bio_create);
  }
  struct {
    const char *name;
    napi_callback callback;
  } functions[] = {
      {"createContext", create_context}, {"setHandler", set_handler}, {"readBuffer", get_read_buffer},
      {"adopt", adopt},                  {"write", write_buffers},    {"pause", pause_reading},
      {"resume", resume_reading},        {"end", end_connection},     {"destroy", destroy_connection},
      {"details", details},              {"pendingBytes", pending_bytes}, {"pump", pump},
  };
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    napi_value function;
    napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].callback, NULL, &function);
    napi_set_named_property(env, exports, functions[i].name, function);
  }
  return exports;
}
