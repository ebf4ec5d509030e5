/* utf8.h — the few UTF-8 facts the tokenizers need: strict validation (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF — the same rules PCRE2 applies), encoding, and the
 * GPT-2 byte <-> code point alphabet of byte-level BPE. Pure functions, no allocation. */
#ifndef SYM_TEXT_UTF8_H
#define SYM_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid UTF-8 sequence starting at p (n bytes available), or 0 if the bytes
 * at p do not start one (stray continuation byte, bad lead, truncated or overlong sequence). */
size_t sym_utf8_valid_len(const uint8_t *p, size_t n);

/* Length of the longest prefix of p[0, n) that is valid UTF-8. */
size_t sym_utf8_valid_prefix(const uint8_t *p, size_t n);

/* Decodes the valid sequence at p (length from sym_utf8_valid_len). */
uint32_t sym_utf8_decode(const uint8_t *p, size_t len);

/* Writes cp (<= 0x10FFFF) as UTF-8 into out (>= 4 bytes); returns the length. */
size_t sym_utf8_encode(uint32_t cp, uint8_t *out);

/* Number of bytes the lead byte b announces (1..4), or 0 for a continuation / invalid lead. */
size_t sym_utf8_lead_len(uint8_t b);

/* GPT-2's reversible byte -> code point map: printable bytes (33..126, 161..172, 174..255) map
 * to themselves, the other 68 to U+0100.. in order. */
uint32_t sym_byte_to_cp(uint8_t b);
/* The inverse: 0..255 for a code point in the alphabet, -1 otherwise. */
int sym_cp_to_byte(uint32_t cp);

#endif
