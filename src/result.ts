/**
 * A value, or why there is none: the one shape every fallible function returns instead of throwing
 * (throwing stays for what a caller cannot handle). `error` is a message unless the caller needs more.
 */
export type Result<T, E = string> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };
