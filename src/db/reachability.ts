// Is the database reachable right now, as far as the driver knows?
//
// mongoose's readyState stays "connected" while the server is down (the driver keeps the client
// and waits up to serverSelectionTimeoutMS per operation). The SMTP door must answer 451 at once
// instead of holding the sender for seconds, so we follow the driver's own view: its topology
// marks a server Unknown as soon as a heartbeat or an operation fails on the network, and known
// again when a heartbeat succeeds.
import mongoose from 'mongoose';

type MongoClient = mongoose.mongo.MongoClient;
type TopologyDescriptionChangedEvent = mongoose.mongo.TopologyDescriptionChangedEvent;

const tracked = new WeakMap<MongoClient, { up: boolean }>();

function track(client: MongoClient): { up: boolean } {
  let state = tracked.get(client);
  if (!state) {
    const s = { up: true };
    client.on('topologyDescriptionChanged', (e: TopologyDescriptionChangedEvent) => {
      s.up = [...e.newDescription.servers.values()].some((d) => d.type !== 'Unknown');
    });
    tracked.set(client, s);
    state = s;
  }
  return state;
}

/** Starts following the connection's driver (call once connected, e.g. at start-up). */
export function followReachability(conn: mongoose.Connection = mongoose.connection): void {
  if (conn.readyState === 1) track(conn.getClient() as unknown as MongoClient);
}

/** False when not connected, or when the driver knows no reachable server. */
export function isDatabaseReachable(conn: mongoose.Connection = mongoose.connection): boolean {
  if (conn.readyState !== 1) return false;
  return track(conn.getClient() as unknown as MongoClient).up;
}

/** Pings the database of the default mongoose connection (/readyz); a closed connection fails at once. */
export async function pingDatabase(): Promise<void> {
  const db = mongoose.connection.db;
  if (mongoose.connection.readyState !== 1 || !db) throw new Error('not connected');
  await db.command({ ping: 1 });
}
