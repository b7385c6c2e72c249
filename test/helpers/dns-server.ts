// A real authoritative DNS server on 127.0.0.1 (UDP, dns-packet) for tests: serves the SPF, DKIM
// and DMARC TXT records a test sets, NXDOMAIN for unknown names, an empty answer (NODATA) for a
// known name without records of the asked type, and SERVFAIL for names marked as failing.
// Point the code under test at it with a DNS_SERVERS-style list: [server.address].
import dgram from 'node:dgram';
import dnsPacket, { type Answer, type Question } from 'dns-packet';

export type RecordSet = { TXT?: string[]; A?: string[]; AAAA?: string[] };

export interface TestDnsServer {
  /** "127.0.0.1:<port>", as DNS_SERVERS expects it. */
  address: string;
  port: number;
  /** Replaces the records of a name (case-insensitive). */
  set(name: string, records: RecordSet): void;
  /** Answers SERVFAIL for this name from now on (a temporary DNS failure). */
  fail(name: string): void;
  /** Names asked so far, as "TYPE name". */
  queries: string[];
  close(): Promise<void>;
}

const NXDOMAIN = 3;
const SERVFAIL = 2;

/** TXT strings are at most 255 bytes each; longer records (DKIM keys) are split, as zone files do. */
function txtChunks(value: string): Buffer[] {
  const bytes = Buffer.from(value, 'utf8');
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255));
  return out.length ? out : [Buffer.alloc(0)];
}

export async function startDnsServer(initial: Record<string, RecordSet> = {}): Promise<TestDnsServer> {
  const zone = new Map<string, RecordSet>();
  const failing = new Set<string>();
  const queries: string[] = [];
  const key = (name: string) => name.toLowerCase().replace(/\.$/, '');
  for (const [name, records] of Object.entries(initial)) zone.set(key(name), records);

  function answer(q: Question): { rcode: number; answers: Answer[] } {
    const name = key(q.name);
    if (failing.has(name)) return { rcode: SERVFAIL, answers: [] };
    const records = zone.get(name);
    if (!records) return { rcode: NXDOMAIN, answers: [] };
    const base = { name: q.name, ttl: 60, class: 'IN' as const };
    switch (q.type) {
      case 'TXT':
        return { rcode: 0, answers: (records.TXT ?? []).map((v) => ({ ...base, type: 'TXT' as const, data: txtChunks(v) })) };
      case 'A':
      case 'AAAA':
        return { rcode: 0, answers: (records[q.type] ?? []).map((v) => ({ ...base, type: q.type as 'A' | 'AAAA', data: v })) };
      default:
        return { rcode: 0, answers: [] };
    }
  }

  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    let query;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return; // not DNS: ignore, like a real server
    }
    const q = query.questions?.[0];
    if (!q) return;
    queries.push(`${q.type} ${q.name}`);
    const { rcode, answers } = answer(q);
    const response = dnsPacket.encode({
      type: 'response',
      id: query.id ?? 0,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
      questions: [q],
      answers,
    });
    socket.send(response, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const port = socket.address().port;

  return {
    address: `127.0.0.1:${port}`,
    port,
    set: (name, records) => void zone.set(key(name), records),
    fail: (name) => void failing.add(key(name)),
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
