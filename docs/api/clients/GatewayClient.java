// SPBE bus REST gateway client (JDK 17, java.net.http, no libraries).
// Gets a token, posts an UMKM with an Idempotency-Key, reads one resident by NIK, and
// prints each answer as a JSON line {"step", "status", "body"} (the token is redacted).
//
// Environment: SPBE_API_URL (https://host:port), SPBE_API_CLIENT_ID, SPBE_API_CLIENT_SECRET,
// SPBE_API_CA (PEM file of the CA that signed the gateway's certificate), SPBE_API_NIK;
// optional: SPBE_API_SCOPE (e.g. "events:publish data:read"), SPBE_API_IDEMPOTENCY_KEY.
//
// Run: javac -d out GatewayClient.java && java -cp out GatewayClient

import java.io.InputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Base64;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public final class GatewayClient {
    // schemas/avro/examples/UmkmTerdaftar.json
    static final String UMKM = """
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
        """;
    static final int ATTEMPTS = 3;

    public static void main(String[] args) throws Exception {
        String base = env("SPBE_API_URL").replaceAll("/+$", "");
        String clientId = env("SPBE_API_CLIENT_ID");
        String secret = env("SPBE_API_CLIENT_SECRET");
        String nik = env("SPBE_API_NIK");
        String key = System.getenv().getOrDefault("SPBE_API_IDEMPOTENCY_KEY", UUID.randomUUID().toString());
        HttpClient http = HttpClient.newBuilder()
            .sslContext(trusting(Path.of(env("SPBE_API_CA"))))
            .connectTimeout(Duration.ofSeconds(10))
            .build();

        // 1. Token: client credentials, the client authenticated by HTTP Basic (RFC 6749 2.3.1).
        String form = "grant_type=client_credentials";
        String scope = System.getenv("SPBE_API_SCOPE");
        if (scope != null && !scope.isEmpty()) {
            form += "&scope=" + URLEncoder.encode(scope, StandardCharsets.UTF_8);
        }
        String basic = Base64.getEncoder().encodeToString(
            (URLEncoder.encode(clientId, StandardCharsets.UTF_8) + ":"
                + URLEncoder.encode(secret, StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8));
        HttpResponse<String> token = send(http, HttpRequest.newBuilder(URI.create(base + "/oauth/token"))
            .header("Authorization", "Basic " + basic)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .POST(HttpRequest.BodyPublishers.ofString(form)));
        Matcher found = Pattern.compile("\"access_token\"\\s*:\\s*\"([^\"]+)\"").matcher(token.body());
        if (token.statusCode() != 200 || !found.find()) {
            print("token", token, null);
            System.exit(1);
        }
        String accessToken = found.group(1);
        print("token", token, accessToken);

        // 2. POST an UMKM. A retry (429, 503) sends the same Idempotency-Key, so the gateway
        //    publishes the event once however often the request arrives.
        HttpResponse<String> umkm = send(http, HttpRequest.newBuilder(URI.create(base + "/api/v1/umkm"))
            .header("Authorization", "Bearer " + accessToken)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key)
            .POST(HttpRequest.BodyPublishers.ofString(UMKM)));
        print("umkm", umkm, null);

        // 3. GET one resident by NIK.
        HttpResponse<String> person = send(http, HttpRequest.newBuilder(
                URI.create(base + "/api/v1/penduduk/" + URLEncoder.encode(nik, StandardCharsets.UTF_8)))
            .header("Authorization", "Bearer " + accessToken)
            .header("Accept", "application/json")
            .GET());
        print("penduduk", person, null);
    }

    /** An SSLContext trusting only the CA certificates of the PEM file. */
    static SSLContext trusting(Path caPem) throws Exception {
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = Files.newInputStream(caPem)) {
            int i = 0;
            for (Certificate ca : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                trust.setCertificateEntry("spbe-ca-" + i++, ca);
            }
        }
        TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        factory.init(trust);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, factory.getTrustManagers(), null);
        return context;
    }

    /** Send, waiting Retry-After seconds and trying again on 429 and 503. */
    static HttpResponse<String> send(HttpClient http, HttpRequest.Builder request) throws Exception {
        HttpRequest built = request.timeout(Duration.ofSeconds(30)).build();
        for (int attempt = 1; ; attempt++) {
            HttpResponse<String> response = http.send(built, HttpResponse.BodyHandlers.ofString());
            int status = response.statusCode();
            if ((status != 429 && status != 503) || attempt == ATTEMPTS) {
                return response;
            }
            String wait = response.headers().firstValue("Retry-After").orElse("1");
            Thread.sleep(1000L * Math.min(Math.max(parseOr(wait, 1), 0), 30));
        }
    }

    static int parseOr(String text, int otherwise) {
        try {
            return Integer.parseInt(text.trim());
        } catch (NumberFormatException e) {
            return otherwise;
        }
    }

    /** One JSON line: the step, the status and the body (JSON as received, on one line). */
    static void print(String step, HttpResponse<String> response, String redact) {
        String body = response.body().strip();
        if (redact != null) {
            body = body.replace(redact, "[redacted]");
        }
        if (body.isEmpty()) {
            body = "null";
        } else if (body.startsWith("{") || body.startsWith("[")) {
            // Valid JSON has no raw line breaks inside strings: joining lines keeps it valid.
            body = body.replace("\r", "").replace("\n", " ");
        } else {  // not JSON (e.g. a proxy's error page): print it as a JSON string
            body = "\"" + body.replace("\\", "\\\\").replace("\"", "\\\"")
                .replaceAll("[\\x00-\\x1f]", " ") + "\"";
        }
        System.out.println("{\"step\":\"" + step + "\",\"status\":" + response.statusCode() + ",\"body\":" + body + "}");
    }

    static String env(String name) {
        String value = System.getenv(name);
        if (value == null || value.isEmpty()) {
            System.err.println("set " + name + " (see docs/api.md)");
            System.exit(2);
        }
        return value;
    }
}
