/**
 * Checks for the local services the tests need. A missing service fails the
 * test with the command that starts it, never a silent skip.
 */
import net from 'node:net';

export const REDIS_URL = process.env.ATR_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
export const POSTGRES_URL = process.env.ATR_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_URL = process.env.ATR_TEST_MYSQL_URL || 'mysql://root@127.0.0.1:3306/test';

const HOW_TO_START: Record<string, string> = {
  redis: 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log',
  postgres: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
  mariadb: 'start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd',
};

function reachable(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function need(name: keyof typeof HOW_TO_START | string, url: string, defaultPort: number): Promise<string> {
  const u = new URL(url);
  if (!(await reachable(Number(u.port || defaultPort), u.hostname))) {
    throw new Error(`${name} is not running at ${u.host}; start it with: ${HOW_TO_START[name] ?? '(see DESIGN.md)'}`);
  }
  return url;
}

export const requireRedis = () => need('redis', REDIS_URL, 6379);
export const requirePostgres = () => need('postgres', POSTGRES_URL, 5432);
export const requireMariadb = () => need('mariadb', MYSQL_URL, 3306);
