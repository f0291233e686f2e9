'use strict';
// check-images.js passes the Dockerfiles and catches ones that lint badly, build differently
// from CI (tools/install-deps.sh, tools/test.sh) or miss a runtime library.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { checkDockerfile } = require('../check-images');

const DOCKER = path.resolve(__dirname, '..', '..', '..', 'deploy', 'docker');
const read = (name) => fs.readFileSync(path.join(DOCKER, name), 'utf8');
// Errors of a Dockerfile text, without the runtime-library check.
const lintErrors = (name, text) => checkDockerfile(path.join(DOCKER, name), null, text).join('\n');

test('both Dockerfiles lint clean and build as CI does', () => {
  for (const name of ['coordinator.Dockerfile', 'worker.Dockerfile']) {
    assert.strictEqual(lintErrors(name, read(name)), '', name);
  }
});

test('a build stage that does not run tools/install-deps.sh fails', () => {
  for (const name of ['coordinator.Dockerfile', 'worker.Dockerfile']) {
    const text = read(name).replace('RUN bash tools/install-deps.sh',
      'RUN apt-get update && apt-get install -y --no-install-recommends cmake g++ ' +
      '&& rm -rf /var/lib/apt/lists/*');
    const errors = lintErrors(name, text);
    assert.match(errors, /must COPY tools\/install-deps.sh and then RUN bash tools\/install-deps.sh/);
    assert.match(errors, /installs packages itself; add them to tools\/install-deps.sh/);
  }
});

test('a CMake configure without tools/test.sh\'s flags fails', () => {
  const text = read('coordinator.Dockerfile').replace(' -DCMAKE_BUILD_TYPE=RelWithDebInfo', '');
  assert.match(lintErrors('coordinator.Dockerfile', text),
    /CMake configure must include tools\/test.sh's -DCMAKE_BUILD_TYPE=RelWithDebInfo/);
});

test('lint rules: pinned base, non-root user, apt hygiene, Debian 12 build stage', () => {
  const base = read('coordinator.Dockerfile');
  assert.match(lintErrors('x', base.replace('FROM debian:12-slim', 'FROM debian')),
    /base image debian must be pinned/);
  assert.match(lintErrors('x', base.replace('USER 10001:10001', 'USER root')),
    /numeric non-root USER/);
  assert.match(lintErrors('x', base.replace(' \\\n && rm -rf /var/lib/apt/lists/*', '')),
    /end with rm -rf \/var\/lib\/apt\/lists/);
  assert.match(lintErrors('x', base.replace('FROM debian:12 AS build', 'FROM ubuntu:24.04 AS build')),
    /installs Debian 12 packages; use debian:12/);
  assert.match(lintErrors('x', `${base}\nFRUM x\n`), /Unknown instruction: FRUM/);
});

test('the runtime stage must provide every shared library of its binaries', () => {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'mxport-bin-'));
  for (const b of ['mxport-worker', 'mxport']) fs.writeFileSync(path.join(bin, b), '');
  const deps = {
    sharedLibraries: () => [
      { soname: 'libgrpc++.so.1.51', file: '/lib/x86_64-linux-gnu/libgrpc++.so.1.51' },
      { soname: 'libnccl.so.2', file: '/usr/local/cuda/lib64/libnccl.so.2' },
      { soname: 'libc.so.6', file: '/lib/x86_64-linux-gnu/libc.so.6' },
    ],
    debianPackages: () => new Map([['/lib/x86_64-linux-gnu/libgrpc++.so.1.51', 'libgrpc++1.51'],
      ['/lib/x86_64-linux-gnu/libc.so.6', 'libc6']]),
  };
  const file = path.join(DOCKER, 'worker.Dockerfile');
  const errorsOf = (text) => checkDockerfile(file, bin, text, deps).join('\n');
  const text = read('worker.Dockerfile');
  assert.strictEqual(errorsOf(text), '');
  assert.match(errorsOf(text.replace(' libgrpc++1.51', '')),
    /loads libgrpc\+\+.so.1.51 from Debian package libgrpc\+\+1.51; add it to apt-get install/);
  assert.match(errorsOf(text.replace(/^COPY --from=cuda \/opt\/nccl\/lib64.*$/m, '')),
    /loads libnccl.so.2 .* which no COPY --from brings in/);
  fs.rmSync(bin, { recursive: true });
});

test('CMD flags must be flags of the ENTRYPOINT binary', {
  skip: process.env.MXPORT_BIN_DIR ? false : 'set MXPORT_BIN_DIR (tools/deploy-check.sh does)',
}, () => {
  const file = path.join(DOCKER, 'coordinator.Dockerfile');
  const text = read('coordinator.Dockerfile').replace('--rest-port=8080', '--http-port=8080');
  assert.match(checkDockerfile(file, process.env.MXPORT_BIN_DIR, text).join('\n'),
    /CMD flag --http-port is not a flag of mxport-coordinator/);
});
