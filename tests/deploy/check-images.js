#!/usr/bin/env node
'use strict';
// Lints the Dockerfiles in deploy/docker and checks that they build the way CI does:
//  - dockerfile-utils diagnostics, plus rules in the spirit of hadolint: pinned base images,
//    apt-get install -y --no-install-recommends with the lists removed, no ADD or sudo, JSON
//    ENTRYPOINT/CMD, COPY --from an existing stage, a numeric non-root USER in the final stage;
//  - the "build" stage is Debian 12 and runs tools/install-deps.sh, the script CI runs, and
//    nothing else that installs packages; its CMake configure carries tools/test.sh's flags;
//  - the final stage provides every shared library of the binaries it copies (ldd on the CI
//    build in --bin-dir): a Debian package it installs, or a file copied from the CUDA stage;
//    and the flags in its CMD are flags of its ENTRYPOINT binary.
//
//   node tests/deploy/check-images.js --bin-dir build/bin [deploy/docker/x.Dockerfile...]
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const { DockerfileParser } = require('dockerfile-ast');
const { validate } = require('dockerfile-utils');

const ROOT = path.resolve(__dirname, '..', '..');
const INSTALL_SCRIPT = 'tools/install-deps.sh';

// Stages of a Dockerfile: [{name, from, index, instructions: [{keyword, args, from, sources}]}],
// with ${VAR} of global ARG defaults expanded.
function parseStages(text) {
  const dockerfile = DockerfileParser.parse(text);
  const vars = {};
  const expand = (s) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a, b) => vars[a || b] ?? m);
  const stages = [];
  for (const i of dockerfile.getInstructions()) {
    const keyword = i.getKeyword();
    const args = (i.getArgumentsContent() || '').replace(/\\\n/g, ' ').replace(/\s+/g, ' ').trim();
    if (keyword === 'ARG' && stages.length === 0) {
      const [name, value] = args.split(/=(.*)/s);
      vars[name] = value;
    }
    if (keyword === 'FROM') {
      stages.push({ name: i.getBuildStage(), from: expand(i.getImage() || ''),
        index: stages.length, line: i.getRange().start.line + 1, instructions: [] });
      continue;
    }
    if (!stages.length) continue;
    const entry = { keyword, args, line: i.getRange().start.line + 1 };
    if (keyword === 'COPY' || keyword === 'ADD') {
      const flag = i.getFromFlag && i.getFromFlag();
      entry.from = flag ? flag.getValue() : null;
      const values = i.getArguments().map((a) => a.getValue()).filter((v) => !v.startsWith('--'));
      entry.sources = values.slice(0, -1).map(expand);
    }
    stages[stages.length - 1].instructions.push(entry);
  }
  return stages;
}

// Words of a shell command, split on whitespace and && / ; boundaries.
const words = (s) => s.split(/\s+/).filter(Boolean);
// Packages named after "apt-get install" in a RUN (flags dropped).
function aptPackages(run) {
  const out = [];
  for (const part of run.split(/&&|;|\|\|/)) {
    const w = words(part);
    const at = w.findIndex((x, k) => x === 'install' && /^apt(-get)?$/.test(w[k - 1] || ''));
    if (at >= 0) out.push(...w.slice(at + 1).filter((x) => !x.startsWith('-')));
  }
  return out;
}
// The flags tools/test.sh configures the main build with.
function testConfigureWords() {
  const script = fs.readFileSync(path.join(ROOT, 'tools/test.sh'), 'utf8');
  const line = script.split('\n').find((l) => /^cmake -S \. -B build /.test(l));
  return words(line.replace(/[>&|].*$/, ''));
}
const globRegex = (glob) => new RegExp(`^${glob.replace(/[.+^$()|[\]\\]/g, '\\$&')
  .replace(/\*/g, '.*').replace(/\?/g, '.')}$`);

function lint(file, text) {
  const errors = [];
  const at = (line, message) => errors.push(`${file}:${line}: ${message}`);
  for (const d of validate(text)) at(d.range.start.line + 1, `${d.message} (dockerfile-utils)`);
  const stages = parseStages(text);
  const names = new Set(stages.map((s) => s.name).filter(Boolean));
  for (const stage of stages) {
    const image = stage.from;
    if (!names.has(image) && (!/:[\w.-]+$/.test(image.replace(/@sha256:.*/, '')) ||
        /:latest$/.test(image))) {
      at(stage.line, `base image ${image} must be pinned to a tag`);
    }
    for (const i of stage.instructions) {
      if (i.keyword === 'ADD') at(i.line, 'use COPY, not ADD');
      if (i.keyword === 'COPY' && i.from && !names.has(i.from) && !i.from.includes(':')) {
        at(i.line, `COPY --from=${i.from}: no such stage`);
      }
      if (i.keyword !== 'RUN') continue;
      if (/\bsudo\b/.test(i.args)) at(i.line, 'do not use sudo');
      if (aptPackages(i.args).length) {
        if (!/apt-get install (.* )?-y\b/.test(i.args) || !/--no-install-recommends/.test(i.args)) {
          at(i.line, 'apt-get install needs -y and --no-install-recommends');
        }
        if (!/apt-get update/.test(i.args) || !/rm -rf \/var\/lib\/apt\/lists\/\*/.test(i.args)) {
          at(i.line, 'apt-get install must follow apt-get update and end with rm -rf /var/lib/apt/lists/*');
        }
      }
    }
  }
  const final = stages[stages.length - 1];
  const user = final.instructions.filter((i) => i.keyword === 'USER').pop();
  if (!user || !/^[1-9]\d*(:\d+)?$/.test(user.args)) {
    at(final.line, 'the final stage must end as a numeric non-root USER (uid:gid)');
  }
  for (const i of final.instructions.filter((x) => ['ENTRYPOINT', 'CMD'].includes(x.keyword))) {
    if (!i.args.startsWith('[')) at(i.line, `${i.keyword} must use the JSON (exec) form`);
  }
  return { errors, stages };
}

// The "build" stage runs the CI install script and tools/test.sh's CMake configure.
function checkBuildSteps(file, stages) {
  const errors = [];
  const build = stages.find((s) => s.name === 'build');
  if (!build) return [`${file}: no stage named "build"`];
  const err = (message) => errors.push(`${file}:${build.line}: build stage: ${message}`);
  if (!/^debian:(12|bookworm)(-slim)?$/.test(build.from)) {
    err(`FROM ${build.from}: ${INSTALL_SCRIPT} installs Debian 12 packages; use debian:12`);
  }
  const copy = build.instructions.findIndex((i) => i.keyword === 'COPY' && !i.from &&
    i.sources.length === 1 && i.sources[0] === INSTALL_SCRIPT);
  const run = build.instructions.findIndex((i) => i.keyword === 'RUN' &&
    i.args === `bash ${INSTALL_SCRIPT}`);
  if (copy < 0 || run < copy) err(`must COPY ${INSTALL_SCRIPT} and then RUN bash ${INSTALL_SCRIPT}`);
  for (const i of build.instructions.filter((x) => x.keyword === 'RUN')) {
    if (aptPackages(i.args).length || /\b(dpkg -i|pip3? install|npm (install|ci))\b/.test(i.args)) {
      err(`line ${i.line} installs packages itself; add them to ${INSTALL_SCRIPT} instead`);
    }
  }
  const configure = build.instructions.find((i) => i.keyword === 'RUN' &&
    i.args.startsWith('cmake -S . -B build '));
  const wanted = testConfigureWords();
  const missing = configure ? wanted.filter((w) => !words(configure.args).includes(w)) : wanted;
  if (missing.length) err(`the CMake configure must include tools/test.sh's ${missing.join(' ')}`);
  return errors;
}

// Debian packages owning files: Map file -> package (files of no package left out). One dpkg
// call for all; usrmerge means a library found in /lib is registered under /usr/lib.
function debianPackages(files) {
  const spellings = new Map();
  for (const file of files) {
    const real = fs.existsSync(file) ? fs.realpathSync(file) : file;
    for (const s of [file, `/usr${file}`, real]) spellings.set(s, file);
  }
  const out = new Map();
  const result = spawnSync('dpkg', ['-S', ...spellings.keys()], { encoding: 'utf8' });
  for (const line of (result.stdout || '').split('\n')) {
    const m = /^([^:\s]+)(?::\S+)?: (\/.*)$/.exec(line);
    if (m && spellings.has(m[2])) out.set(spellings.get(m[2]), m[1]);
  }
  return out;
}
// The C runtime every Debian base image has; any other package must be installed explicitly.
const BASE_PACKAGES = new Set(['libc6', 'libgcc-s1']);

// Shared libraries of a binary: [{soname, file}] (file null when ldd finds none).
function sharedLibraries(binary) {
  const out = [];
  for (const line of execFileSync('ldd', [binary], { encoding: 'utf8' }).split('\n')) {
    const m = /^\s*(\S+) => (not found|(\S+) \(0x)/.exec(line);
    if (m) out.push({ soname: m[1], file: m[3] || null });
  }
  return out;
}

function checkRuntime(file, stages, binDir, deps = { sharedLibraries, debianPackages }) {
  const errors = [];
  const final = stages[stages.length - 1];
  const err = (message) => errors.push(`${file}:${final.line}: final stage: ${message}`);
  const installed = new Set(final.instructions.filter((i) => i.keyword === 'RUN')
    .flatMap((i) => aptPackages(i.args)));
  for (const p of installed) if (/-dev$/.test(p)) err(`installs the build package ${p}`);
  const copies = final.instructions.filter((i) => i.keyword === 'COPY' && i.from);
  const binaries = copies.filter((i) => i.from === 'build').flatMap((i) => i.sources)
    .map((s) => path.basename(s));
  if (!binaries.length) err('copies no binary from the build stage');
  const copied = copies.filter((i) => i.from !== 'build').flatMap((i) => i.sources)
    .map((s) => globRegex(path.basename(s)));
  const libraries = new Map();  // soname -> {file, binary}
  for (const binary of binaries) {
    const built = path.join(binDir, binary);
    if (!fs.existsSync(built)) {
      err(`${built} does not exist: build ${binary} first`);
      continue;
    }
    for (const lib of deps.sharedLibraries(built)) {
      if (!libraries.has(lib.soname)) libraries.set(lib.soname, { file: lib.file, binary });
    }
  }
  const packages = deps.debianPackages([...libraries.values()].map((l) => l.file).filter(Boolean));
  for (const [soname, { file: lib, binary }] of libraries) {
    const pkg = lib && packages.get(lib);
    if (!lib) {
      err(`${binary} needs ${soname}, which ldd cannot find here`);
    } else if (pkg) {
      if (!installed.has(pkg) && !BASE_PACKAGES.has(pkg)) {
        err(`${binary} loads ${soname} from Debian package ${pkg}; add it to apt-get install`);
      }
    } else if (!copied.some((re) => re.test(soname))) {
      err(`${binary} loads ${soname} (${lib}), which no COPY --from brings in`);
    }
  }
  // Flags in CMD must be flags of the ENTRYPOINT binary.
  const json = (keyword) => {
    const i = final.instructions.filter((x) => x.keyword === keyword).pop();
    try { return i ? JSON.parse(i.args) : []; } catch (e) { return []; }
  };
  const [entry] = json('ENTRYPOINT');
  const flags = json('CMD').map((a) => a.split('=')[0]).filter((a) => a.startsWith('--'));
  if (flags.length && binaries.includes(entry) && fs.existsSync(path.join(binDir, entry))) {
    const help = execFileSync(path.join(binDir, entry), ['--help'], { encoding: 'utf8' });
    for (const flag of flags) {
      if (!new RegExp(`^\\s+(-\\w,)?${flag}\\b`, 'm').test(help)) {
        err(`CMD flag ${flag} is not a flag of ${entry}`);
      }
    }
  }
  return errors;
}

function checkDockerfile(file, binDir, text = fs.readFileSync(file, 'utf8'), deps = undefined) {
  const name = path.relative(ROOT, path.resolve(file));
  const { errors, stages } = lint(name, text);
  if (!stages.length) return errors.concat(`${name}: no FROM`);
  return errors.concat(checkBuildSteps(name, stages), binDir ? checkRuntime(name, stages, binDir, deps) : []);
}

function main(argv) {
  let binDir = 'build/bin';
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--bin-dir') binDir = argv[++i];
    else files.push(argv[i]);
  }
  if (!files.length) {
    const dir = path.join(ROOT, 'deploy/docker');
    files.push(...fs.readdirSync(dir).filter((f) => f.endsWith('.Dockerfile')).map((f) => path.join(dir, f)));
  }
  let failed = false;
  for (const file of files) {
    const errors = checkDockerfile(file, binDir);
    const name = path.relative(ROOT, path.resolve(file));
    if (errors.length) {
      failed = true;
      console.log(`FAIL ${name}`);
      errors.forEach((e) => console.log(`  ${e}`));
    } else {
      console.log(`ok   ${name}: lint clean; build stage runs ${INSTALL_SCRIPT}; runtime libraries present`);
    }
  }
  return failed ? 1 : 0;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));
module.exports = { checkDockerfile, parseStages };
