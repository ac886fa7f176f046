# A real token issuer for the benchmarks, sourced by them: python3's http.server publishes the
# OpenID configuration and the JWKS of a fresh RSA key; tokens are signed with openssl.
#   start_issuer WORK PORT      sets $issuer, starts the server (its pid joins $pids)
#   sign_token SCOPE            prints an RS256 token of $issuer, audience `reef`, valid 1 h
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

start_issuer() {
    local work="$1" port="$2"
    issuer="http://127.0.0.1:$port"
    issuer_key="$work/rsa.pem"
    mkdir -p "$work/issuer/.well-known"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$issuer_key" 2>/dev/null
    local n
    n="$(openssl rsa -in "$issuer_key" -noout -modulus | cut -d= -f2 | xxd -r -p | b64url)"
    printf '{"issuer":"%s","jwks_uri":"%s/jwks"}' "$issuer" "$issuer" > "$work/issuer/.well-known/openid-configuration"
    printf '{"keys":[{"kty":"RSA","kid":"k1","alg":"RS256","use":"sig","n":"%s","e":"AQAB"}]}' "$n" > "$work/issuer/jwks"
    (cd "$work/issuer" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) & pids+=($!)
}

sign_token() {
    local now header payload sig
    now="$(date +%s)"
    header="$(printf '{"alg":"RS256","typ":"JWT","kid":"k1"}' | b64url)"
    payload="$(printf '{"iss":"%s","aud":"reef","sub":"bench","exp":%d,"nbf":%d,"scope":"%s"}' \
        "$issuer" $((now + 3600)) $((now - 60)) "$1" | b64url)"
    sig="$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$issuer_key" | b64url)"
    printf '%s.%s.%s' "$header" "$payload" "$sig"
}
