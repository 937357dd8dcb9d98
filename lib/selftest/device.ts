// The kernel's LUO device selftests (tools/testing/selftests/liveupdate/
// liveupdate.c, all 15 TEST_Fs), written against this library's public
// API. Names match upstream so a report lines up with the C run.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { LiveUpdate } from '../liveupdate';
import { Memfd } from '../memfd';
import type { Session } from '../session';
import { type SelftestCase, expectCode, readText } from './support';

function withDevice(body: (lu: LiveUpdate, sessions: Session[]) => void | Promise<void>) {
  return async (devicePath: string) => {
    const lu = LiveUpdate.openSync(devicePath);
    const sessions: Session[] = [];
    try {
      await body(lu, sessions);
    } finally {
      for (const s of sessions) s.close();
      lu.close();
    }
  };
}

function memfdWith(name: string, text: string): Memfd {
  const m = Memfd.createSync(name, { allowSealing: false }); // memfd_create(name, 0) as upstream
  if (text) fs.writeSync(m.fd, text);
  return m;
}

export const deviceCases: SelftestCase[] = [
  {
    name: 'basic_open_close',
    run: withDevice((lu) => assert.ok(lu.fd >= 0)),
  },
  {
    name: 'exclusive_open',
    run: withDevice((lu) => expectCode(() => LiveUpdate.openSync(lu.path), 'EBUSY')),
  },
  {
    name: 'create_duplicate_session',
    run: withDevice((lu, sessions) => {
      sessions.push(lu.createSessionSync('duplicate-session-test'));
      expectCode(() => lu.createSessionSync('duplicate-session-test'), 'EEXIST');
    }),
  },
  {
    name: 'create_distinct_sessions',
    run: withDevice((lu, sessions) => {
      sessions.push(lu.createSessionSync('distinct-session-1'), lu.createSessionSync('distinct-session-2'));
    }),
  },
  {
    name: 'preserve_memfd',
    run: withDevice((lu) => {
      const text = 'hello liveupdate';
      using m = memfdWith('test-memfd', text);
      const session = lu.createSessionSync('preserve-memfd-test');
      session.preserveSync(m, 0x1234);
      session.close(); // unpreserves; the memfd itself is untouched
      assert.equal(readText(m.fd), text);
    }),
  },
  {
    name: 'preserve_multiple_memfds',
    run: withDevice((lu, sessions) => {
      const session = lu.createSessionSync('preserve-multi-memfd-test');
      sessions.push(session);
      using m1 = memfdWith('test-memfd-1', 'data for memfd one');
      using m2 = memfdWith('test-memfd-2', 'data for memfd two');
      session.preserveSync(m1, 0xaaaa);
      session.preserveSync(m2, 0xbbbb);
      assert.equal(readText(m1.fd), 'data for memfd one');
      assert.equal(readText(m2.fd), 'data for memfd two');
    }),
  },
  {
    name: 'preserve_complex_scenario',
    run: withDevice((lu, sessions) => {
      const s1 = lu.createSessionSync('complex-session-1');
      const s2 = lu.createSessionSync('complex-session-2');
      sessions.push(s1, s2);
      using data1 = memfdWith('data1', 'data for session 1');
      using empty1 = memfdWith('empty1', '');
      using data2 = memfdWith('data2', 'data for session 2');
      using empty2 = memfdWith('empty2', '');
      s1.preserveSync(data1, 0x1111);
      s1.preserveSync(empty1, 0x2222);
      s2.preserveSync(data2, 0x3333);
      s2.preserveSync(empty2, 0x4444);
      assert.equal(readText(data1.fd), 'data for session 1');
      assert.equal(readText(data2.fd), 'data for session 2');
      assert.equal(readText(empty1.fd), '');
      assert.equal(readText(empty2.fd), '');
    }),
  },
  {
    name: 'preserve_unsupported_fd',
    run: withDevice((lu, sessions) => {
      const session = lu.createSessionSync('unsupported-fd-test');
      sessions.push(session);
      const fd = fs.openSync('/dev/null', 'r+');
      try {
        expectCode(() => session.preserveSync(fd, 0xdead), 'ENOENT');
      } finally {
        fs.closeSync(fd);
      }
    }),
  },
  {
    name: 'prevent_double_preservation',
    run: withDevice((lu, sessions) => {
      const s1 = lu.createSessionSync('double-preserve-session-1');
      const s2 = lu.createSessionSync('double-preserve-session-2');
      sessions.push(s1, s2);
      using m = memfdWith('test-memfd', '');
      s1.preserveSync(m, 0x1111);
      expectCode(() => s2.preserveSync(m, 0x2222), 'EBUSY');
      expectCode(() => s1.preserveSync(m, 0x3333), 'EBUSY');
    }),
  },
  {
    // Upstream fills all 64 name bytes without a NUL and expects EINVAL from
    // the kernel; this library refuses such a name before the ioctl.
    name: 'create_session_no_null_termination',
    run: withDevice((lu) => expectCode(() => lu.createSessionSync('X'.repeat(64)), 'ERR_INVALID_ARG_VALUE')),
  },
  {
    // Upstream: EINVAL from the kernel; here refused before the ioctl.
    name: 'create_session_empty_name',
    run: withDevice((lu) => expectCode(() => lu.createSessionSync(''), 'ERR_INVALID_ARG_VALUE')),
  },
  {
    name: 'get_session_name',
    run: withDevice((lu, sessions) => {
      const session = lu.createSessionSync('get-name-test-session');
      sessions.push(session);
      assert.equal(session.getNameSync(), 'get-name-test-session');
    }),
  },
  {
    name: 'get_session_name_max_length',
    run: withDevice((lu, sessions) => {
      const name = 'A'.repeat(63);
      const session = lu.createSessionSync(name);
      sessions.push(session);
      assert.equal(session.getNameSync(), name);
    }),
  },
  {
    name: 'preserve_many_sessions',
    run: withDevice((lu, sessions) => {
      for (let i = 0; i < 2000; i++) sessions.push(lu.createSessionSync(`many-session-${i}`));
    }),
  },
  {
    name: 'preserve_many_files',
    run: withDevice((lu, sessions) => {
      const session = lu.createSessionSync('many-files-test');
      sessions.push(session);
      const memfds: Memfd[] = [];
      try {
        for (let i = 0; i < 500; i++) {
          const m = memfdWith('test-memfd', '');
          memfds.push(m);
          session.preserveSync(m, i);
        }
      } finally {
        for (const m of memfds) m.close();
      }
    }),
  },
];
