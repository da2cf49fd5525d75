#ifndef ROAS_COPENSSL_SHIM_H
#define ROAS_COPENSSL_SHIM_H

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <stddef.h>

/// An HMAC-SHA256 context keyed once; `roas_hmac_sha256_reset` starts a new message with the same key.
static inline EVP_MAC_CTX *roas_hmac_sha256_new(const unsigned char *key, size_t key_length) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) return NULL;
    EVP_MAC_CTX *context = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (context == NULL) return NULL;
    OSSL_PARAM parameters[2];
    parameters[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    parameters[1] = OSSL_PARAM_construct_end();
    // A zero-length key is legal for HMAC; OpenSSL wants a non-NULL pointer for it.
    static const unsigned char empty = 0;
    if (EVP_MAC_init(context, key_length > 0 ? key : &empty, key_length, parameters) != 1) {
        EVP_MAC_CTX_free(context);
        return NULL;
    }
    return context;
}

static inline int roas_hmac_sha256_reset(EVP_MAC_CTX *context) {
    return EVP_MAC_init(context, NULL, 0, NULL);
}

static inline int roas_hmac_sha256_update(EVP_MAC_CTX *context, const void *bytes, size_t length) {
    return EVP_MAC_update(context, (const unsigned char *)bytes, length);
}

/// Writes the 32-byte tag to `output`.
static inline int roas_hmac_sha256_final(EVP_MAC_CTX *context, unsigned char *output) {
    size_t length = 0;
    return EVP_MAC_final(context, output, &length, 32) == 1 && length == 32;
}

static inline void roas_hmac_sha256_free(EVP_MAC_CTX *context) {
    EVP_MAC_CTX_free(context);
}

/// Writes the 32-byte SHA-256 digest of `bytes` to `output`.
static inline int roas_sha256(const void *bytes, size_t length, unsigned char *output) {
    static const unsigned char empty = 0;
    unsigned int size = 0;
    return EVP_Digest(length > 0 ? bytes : &empty, length, output, &size, EVP_sha256(), NULL) == 1 && size == 32;
}

static inline int roas_constant_time_equal(const void *a, const void *b, size_t length) {
    return CRYPTO_memcmp(a, b, length) == 0;
}

#endif
