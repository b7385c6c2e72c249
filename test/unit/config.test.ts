import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('config', () => {
  it('has working defaults for development', () => {
    const c = loadConfig({});
    assert.equal(c.env, 'development');
    assert.equal(c.httpPort, 3000);
    assert.equal(c.smtpMxPort, 2525);
    assert.equal(c.smtpSubmissionPort, 2587);
    assert.equal(c.publicUrl, 'http://localhost:3000');
    assert.equal(c.mailDomain, 'paymail.localhost');
    assert.equal(c.dataDir, path.resolve('./data'));
    assert.equal(c.mongodbUri, undefined);
    assert.equal(c.outboundSmtpUrl, undefined);
    assert.ok(Object.isFrozen(c));
  });

  it('reads every variable', () => {
    const c = loadConfig({
      MONGODB_URI: 'mongodb://db1,db2/paymail?replicaSet=rs0',
      DATA_DIR: '/var/lib/paymail',
      HTTP_PORT: '0',
      PUBLIC_URL: 'https://pay.example.com/',
      SMTP_MX_PORT: '25',
      SMTP_SUBMISSION_PORT: '587',
      MAIL_DOMAIN: 'Pay.Example.com',
      OUTBOUND_SMTP_URL: 'smtp://relay.example.com:587',
      LINK_SIGNING_KEYS: 'k2:0123456789abcdef0123456789abcdef, k1:abcdefabcdefabcdefabcdefabcdefabcdef',
      DNS_SERVERS: '127.0.0.1:5353,[::1]:53',
    });
    assert.equal(c.httpPort, 0);
    assert.equal(c.publicUrl, 'https://pay.example.com');
    assert.equal(c.mailDomain, 'pay.example.com');
    assert.deepEqual(c.linkSigningKeys?.map((k) => k.kid), ['k2', 'k1']);
    assert.deepEqual(c.dnsServers, ['127.0.0.1:5353', '[::1]:53']);
  });

  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ HTTP_PORT: 'eighty' }, /^invalid HTTP_PORT \(got "eighty"\)/],
    [{ SMTP_MX_PORT: '70000' }, /^invalid SMTP_MX_PORT/],
    [{ PUBLIC_URL: 'localhost:3000' }, /^invalid PUBLIC_URL/],
    [{ MONGODB_URI: 'postgres://x' }, /^invalid MONGODB_URI/],
    [{ MAIL_DOMAIN: 'not a domain' }, /^invalid MAIL_DOMAIN/],
    [{ OUTBOUND_SMTP_URL: 'http://relay' }, /^invalid OUTBOUND_SMTP_URL/],
    [{ LINK_SIGNING_KEYS: 'short:abc' }, /^invalid LINK_SIGNING_KEYS: /],
    [{ NODE_ENV: 'staging' }, /^invalid NODE_ENV/],
    [{ DNS_SERVERS: 'a b' }, /^invalid DNS_SERVERS/],
    [{ NODE_ENV: 'production' }, /^invalid LINK_SIGNING_KEYS: required/],
    [
      { NODE_ENV: 'production', LINK_SIGNING_KEYS: 'k1:0123456789abcdef0123456789abcdef', PUBLIC_URL: 'http://pay.example.com' },
      /^invalid PUBLIC_URL .*https/,
    ],
    [
      { NODE_ENV: 'production', LINK_SIGNING_KEYS: 'k1:0123456789abcdef0123456789abcdef', PUBLIC_URL: 'https://pay.example.com' },
      /^invalid OUTBOUND_SMTP_URL: required/,
    ],
    [
      {
        NODE_ENV: 'production',
        LINK_SIGNING_KEYS: 'k1:0123456789abcdef0123456789abcdef',
        PUBLIC_URL: 'https://pay.example.com',
        OUTBOUND_SMTP_URL: 'smtp://relay.example.com:587',
      },
      /^invalid SMTP_TLS_CERT_FILE: required/,
    ],
    [
      {
        NODE_ENV: 'production',
        LINK_SIGNING_KEYS: 'k1:0123456789abcdef0123456789abcdef',
        PUBLIC_URL: 'https://pay.example.com',
        OUTBOUND_SMTP_URL: 'smtp://relay.example.com:587',
        SMTP_TLS_KEY_FILE: '/etc/paymail/tls.key',
        SMTP_TLS_CERT_FILE: '/etc/paymail/tls.crt',
      },
      /^invalid RECEIPT_SIGNING_KEY_FILE: required/,
    ],
    [{ RECEIPT_SIGNING_KEY: 'pem', RECEIPT_SIGNING_KEY_FILE: '/k.pem' }, /^invalid RECEIPT_SIGNING_KEY\/RECEIPT_SIGNING_KEY_FILE: set one/],
  ];
  for (const [env, re] of bad) {
    it(`stops on ${JSON.stringify(env)} with one line naming the variable`, () => {
      assert.throws(
        () => loadConfig(env),
        (e: unknown) => e instanceof ConfigError && re.test(e.message) && !e.message.includes('\n'),
      );
    });
  }

  it('production without MONGODB_URI is refused, naming the variable (no embedded database in production)', () => {
    const production = {
      NODE_ENV: 'production',
      LINK_SIGNING_KEYS: 'k1:0123456789abcdef0123456789abcdef',
      PUBLIC_URL: 'https://pay.example.com',
      OUTBOUND_SMTP_URL: 'smtp://relay.example.com:587',
      SMTP_TLS_KEY_FILE: '/etc/paymail/tls.key',
      SMTP_TLS_CERT_FILE: '/etc/paymail/tls.crt',
      RECEIPT_SIGNING_KEY_FILE: '/etc/paymail/receipt.pem',
    };
    assert.throws(() => loadConfig(production), (e: unknown) => e instanceof ConfigError && /^invalid MONGODB_URI: required when NODE_ENV=production/.test(e.message));
    assert.equal(loadConfig({ ...production, MONGODB_URI: 'mongodb://db1/paymail', SECRETS_KEY: '0'.repeat(64) }).production, true);
  });

  it('production without SECRETS_KEY is refused, naming the variable; a malformed key is refused and never echoed', () => {
    const production = {
      NODE_ENV: 'production',
      MONGODB_URI: 'mongodb://db1/paymail',
      LINK_SIGNING_KEYS: 'k1:0123456789abcdef0123456789abcdef',
      PUBLIC_URL: 'https://pay.example.com',
      OUTBOUND_SMTP_URL: 'smtp://relay.example.com:587',
      SMTP_TLS_KEY_FILE: '/etc/paymail/tls.key',
      SMTP_TLS_CERT_FILE: '/etc/paymail/tls.crt',
      RECEIPT_SIGNING_KEY_FILE: '/etc/paymail/receipt.pem',
    };
    assert.throws(() => loadConfig(production), (e: unknown) => e instanceof ConfigError && /^invalid SECRETS_KEY: required when NODE_ENV=production/.test(e.message));
    assert.throws(() => loadConfig({ SECRETS_KEY: 'short-secret-key' }), (e: unknown) => e instanceof ConfigError && /invalid SECRETS_KEY: expected 32 bytes/.test(e.message) && !e.message.includes('short-secret-key'));
    const hex = 'ab'.repeat(32);
    assert.equal(loadConfig({ ...production, SECRETS_KEY: hex }).secretsKey, hex);
    assert.equal(loadConfig({ SECRETS_KEY: Buffer.alloc(32, 7).toString('base64') }).secretsKey, Buffer.alloc(32, 7).toString('base64'));
  });

  it('reports every problem at once, on one line', () => {
    assert.throws(
      () => loadConfig({ HTTP_PORT: 'eighty', SMTP_MX_PORT: '70000', NODE_ENV: 'production', PUBLIC_URL: 'http://pay.example.com' }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const named = [...e.message.matchAll(/invalid ([A-Z_/]+)/g)].map((m) => m[1]);
        assert.deepEqual(named, ['HTTP_PORT', 'SMTP_MX_PORT', 'LINK_SIGNING_KEYS', 'PUBLIC_URL', 'OUTBOUND_SMTP_URL', 'SMTP_TLS_CERT_FILE', 'RECEIPT_SIGNING_KEY_FILE', 'MONGODB_URI', 'SECRETS_KEY']);
        assert.ok(!e.message.includes('\n'));
        return true;
      },
    );
  });

  it('never echoes the signing secret in its error', () => {
    assert.throws(() => loadConfig({ LINK_SIGNING_KEYS: 'k1:tooshortsecret' }), (e: Error) => !e.message.includes('tooshortsecret'));
  });
});
