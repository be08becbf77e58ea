import { connect } from "node:net";

export interface RawExchange {
  /** Everything the edge sent, as latin1 text. */
  text: string;
  /** Whether the edge closed the connection before the wait ended. */
  closed: boolean;
  /** Status codes of the responses found in `text`, in order. */
  statuses: number[];
}

/**
 * Writes raw bytes to the edge and collects what comes back until the edge
 * closes the connection or `waitMs` passes.
 */
export function rawExchange(port: number, chunks: Array<string | Buffer>, waitMs = 1000, gapMs = 0): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const received: Buffer[] = [];
    let closed = false;
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(received).toString("latin1");
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
      resolve({ text, closed, statuses });
    };
    const timer = setTimeout(finish, waitMs);
    socket.on("data", (chunk: Buffer) => received.push(chunk));
    socket.on("end", () => {
      closed = true;
      finish();
    });
    socket.on("close", () => {
      closed = true;
      finish();
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNRESET" || error.code === "EPIPE") return;
      reject(error);
    });
    socket.on("connect", async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) return;
        socket.write(chunk);
        if (gapMs > 0) await new Promise((resume) => setTimeout(resume, gapMs));
      }
    });
  });
}
