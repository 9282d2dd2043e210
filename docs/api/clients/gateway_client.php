<?php
// SPBE bus REST gateway client (PHP 8 with the curl extension, no Composer).
// Gets a token, posts an UMKM with an Idempotency-Key, reads one resident by NIK, and
// prints each answer as a JSON line {"step", "status", "body"} (the token is redacted).
//
// Environment: SPBE_API_URL (https://host:port), SPBE_API_CLIENT_ID, SPBE_API_CLIENT_SECRET,
// SPBE_API_CA (PEM file of the CA that signed the gateway's certificate), SPBE_API_NIK;
// optional: SPBE_API_SCOPE (e.g. "events:publish data:read"), SPBE_API_IDEMPOTENCY_KEY.
//
// Run: php gateway_client.php

declare(strict_types=1);

// schemas/avro/examples/UmkmTerdaftar.json
const UMKM = <<<'JSON'
{
  "id_umkm": "UMKM-3273-2026-000123",
  "nib": "9120301234567",
  "nik_pemilik": "3273025708900003",
  "nama_pemilik": "Siti Nurhaliza Rahmawati",
  "npwp": null,
  "nama_usaha": "Warung Nasi Bu Siti",
  "kbli": {"kode": "56102", "versi": "V2020"},
  "skala_usaha": "MIKRO",
  "kode_wilayah": "32.73.02.1003",
  "alamat_usaha": "Jl. Cisitu Lama No. 45, RT 004/RW 007",
  "jumlah_tenaga_kerja": 3,
  "sumber": "OSS",
  "terdaftar_pada": "2026-11-28T03:15:00Z"
}
JSON;
const ATTEMPTS = 3;

function env(string $name): string
{
    $value = getenv($name);
    if ($value === false || $value === '') {
        fwrite(STDERR, "set $name (see docs/api.md)\n");
        exit(2);
    }
    return $value;
}

/**
 * Send a request, waiting Retry-After seconds and trying again on 429 and 503.
 * Returns [status, body text].
 */
function send(string $method, string $url, array $headers, ?string $body, string $ca): array
{
    for ($attempt = 1; ; $attempt++) {
        $retryAfter = 1;
        $curl = curl_init($url);
        curl_setopt_array($curl, [
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_CAINFO => $ca,            // trust only the gateway's CA
            CURLOPT_SSL_VERIFYPEER => true,
            CURLOPT_SSL_VERIFYHOST => 2,
            CURLOPT_CONNECTTIMEOUT => 10,
            CURLOPT_TIMEOUT => 30,
            CURLOPT_HEADERFUNCTION => function ($curl, string $line) use (&$retryAfter): int {
                if (stripos($line, 'Retry-After:') === 0) {
                    $retryAfter = max(0, min(30, (int) trim(substr($line, 12))));
                }
                return strlen($line);
            },
        ]);
        if ($body !== null) {
            curl_setopt($curl, CURLOPT_POSTFIELDS, $body);
        }
        $text = curl_exec($curl);
        if ($text === false) {
            fwrite(STDERR, "request to $url failed: " . curl_error($curl) . "\n");
            exit(1);
        }
        $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        curl_close($curl);
        if (($status !== 429 && $status !== 503) || $attempt === ATTEMPTS) {
            return [$status, $text];
        }
        sleep($retryAfter);
    }
}

/** One JSON line: the step, the status and the body (decoded JSON, else the text). */
function report(string $step, int $status, string $text, ?string $redact = null): void
{
    if ($redact !== null) {
        $text = str_replace($redact, '[redacted]', $text);
    }
    $body = trim($text) === '' ? null : json_decode($text);
    if ($body === null && trim($text) !== '' && trim($text) !== 'null') {
        $body = $text;  // not JSON (e.g. a proxy's error page)
    }
    $line = ['step' => $step, 'status' => $status, 'body' => $body];
    echo json_encode($line, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
}

$base = rtrim(env('SPBE_API_URL'), '/');
$ca = env('SPBE_API_CA');
$nik = env('SPBE_API_NIK');
$key = getenv('SPBE_API_IDEMPOTENCY_KEY') ?: bin2hex(random_bytes(16));

// 1. Token: client credentials, the client authenticated by HTTP Basic (RFC 6749 2.3.1).
$form = ['grant_type' => 'client_credentials'];
if (getenv('SPBE_API_SCOPE')) {
    $form['scope'] = getenv('SPBE_API_SCOPE');
}
$basic = base64_encode(urlencode(env('SPBE_API_CLIENT_ID')) . ':' . urlencode(env('SPBE_API_CLIENT_SECRET')));
[$status, $text] = send('POST', "$base/oauth/token", [
    "Authorization: Basic $basic",
    'Content-Type: application/x-www-form-urlencoded',
], http_build_query($form), $ca);
$token = json_decode($text, true);
if ($status !== 200 || !is_array($token) || !isset($token['access_token'])) {
    report('token', $status, $text);
    exit(1);
}
$accessToken = $token['access_token'];
report('token', $status, $text, $accessToken);

// 2. POST an UMKM. A retry (429, 503) sends the same Idempotency-Key, so the gateway
//    publishes the event once however often the request arrives.
[$status, $text] = send('POST', "$base/api/v1/umkm", [
    "Authorization: Bearer $accessToken",
    'Content-Type: application/json',
    "Idempotency-Key: $key",
], UMKM, $ca);
report('umkm', $status, $text);

// 3. GET one resident by NIK.
[$status, $text] = send('GET', "$base/api/v1/penduduk/" . rawurlencode($nik), [
    "Authorization: Bearer $accessToken",
    'Accept: application/json',
], null, $ca);
report('penduduk', $status, $text);
