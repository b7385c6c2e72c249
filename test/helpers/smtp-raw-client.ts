// A bare SMTP client on a socket, for what nodemailer will not do: oversized DATA, pausing
// mid-message, idling, opening many connections, reading the reply to a refused connection.
import net from 'node:net';

export interface Reply {
  code: number;
  text: string;
}

export interface RawClient {
  /** The next reply (multi-line replies joined with \n); rejects if the connection closes first. */
  read(): Promise<Reply>;
  cmd(line: string): Promise<Reply>;
  write(data: string): Promise<void>;
  /** Resolves when the server (or we) closed the connection. */
  closed: Promise<void>;
  end(): void;
}

export function rawClient(port: number): RawClient {
  const socket = net.connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  let buffer = '';
  let lines: string[] = [];
  let isClosed = false;
  const replies: Reply[] = [];
  const waiting: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let i: number;
    while ((i = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      lines.push(line);
      if (/^\d{3}(?: |$)/.test(line)) {
        const reply = { code: Number(line.slice(0, 3)), text: lines.join('\n') };
        lines = [];
        const w = waiting.shift();
        if (w) w.resolve(reply);
        else replies.push(reply);
      }
    }
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      isClosed = true;
      for (const w of waiting.splice(0)) w.reject(new Error('connection closed'));
      resolve();
    }),
  );
  const read = () =>
    new Promise<Reply>((resolve, reject) => {
      if (replies.length) return resolve(replies.shift()!);
      if (isClosed) return reject(new Error('connection closed'));
      waiting.push({ resolve, reject });
    });
  return {
    read,
    async cmd(line: string): Promise<Reply> {
      socket.write(`${line}\r\n`);
      return read();
    },
    write(data: string) {
      return new Promise<void>((resolve) => socket.write(data, () => resolve()));
    },
    closed,
    end() {
      socket.destroy();
    },
  };
}
