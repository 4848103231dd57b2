'use strict';
/**
 * Stratus Lambda runtime client for Node.js (AWS Lambda Runtime API 2018-06-01).
 *
 * One self-contained CommonJS file using only Node's built-in modules. The server embeds it and
 * bind-mounts it into the sandbox; it runs as `/usr/bin/node /var/runtime/node/bootstrap.js`.
 *
 * Behaviour (handler loading, callback/async semantics, error payloads, console format) follows
 * AWS's aws-lambda-nodejs-runtime-interface-client so recorded AWS responses match. Differences
 * are listed in runtimes/README.md.
 */

const net = require('net');
const util = require('util');
const path = require('path');
const fs = require('fs');
const url = require('url');
const Module = require('module');

const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const REQUEST_ID_SYMBOL = Symbol.for('aws.lambda.runtime.requestId');

// ---------------------------------------------------------------------------------------------
// Runtime API client: HTTP/1.1 over one persistent socket. Node's http client costs ~0.25 ms of
// CPU per request here; this costs a fraction, and a warm invoke makes two requests.

class RuntimeApiClient {
  constructor(address) {
    this.connectTo(address);
  }

  connectTo(address) {
    const colon = address.lastIndexOf(':');
    this.hostname = (colon > 0 ? address.slice(0, colon) : address).replace(/^\[|\]$/g, '');
    this.port = colon > 0 ? parseInt(address.slice(colon + 1), 10) : 80;
    this.hostHeader = `Host: ${address}\r\n`;
    if (this.socket) this.socket.destroy();
    this.socket = null;
    this.reused = false; // the socket has carried a complete exchange already
    this.pending = null;
  }

  /** Resolves to {status, headers (lower-case names), body: Buffer}; rejects on connection errors. */
  request(method, requestPath, body, extraHeaders) {
    let head = `${method} ${requestPath} HTTP/1.1\r\n${this.hostHeader}`;
    for (const name in extraHeaders) head += `${name}: ${extraHeaders[name]}\r\n`;
    if (body !== undefined) {
      head += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
    }
    const message = head + '\r\n' + (body === undefined ? '' : body);
    return new Promise((resolve, reject) => {
      this.pending = { message, resolve, reject, retried: false };
      this._send();
    });
  }

  _send() {
    if (this.socket === null) this._connect();
    const p = this.pending;
    p.reused = this.reused;
    p.head = null; // parsed status line and headers
    p.buf = null; // bytes before the end of the headers
    p.chunks = [];
    p.got = 0;
    p.anyBytes = false;
    this.socket.ref();
    this.socket.write(p.message);
  }

  _connect() {
    const socket = net.connect({ host: this.hostname, port: this.port });
    socket.setNoDelay(true);
    let lastError = null;
    socket.on('data', (data) => {
      if (socket === this.socket) this._onData(data);
    });
    socket.on('error', (err) => {
      lastError = err;
    });
    socket.on('close', () => {
      if (socket === this.socket) this._onClose(lastError);
    });
    this.socket = socket;
    this.reused = false;
  }

  _onData(data) {
    const p = this.pending;
    if (p === null) return; // nothing asked: ignore unsolicited bytes
    p.anyBytes = true;
    if (p.head === null) {
      p.buf = p.buf === null ? data : Buffer.concat([p.buf, data]);
      const end = p.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = p.buf.toString('latin1', 0, end).split('\r\n');
      const headers = {};
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i].indexOf(':');
        if (colon > 0) headers[lines[i].slice(0, colon).trim().toLowerCase()] = lines[i].slice(colon + 1).trim();
      }
      const status = parseInt(lines[0].split(' ')[1], 10);
      const te = headers['transfer-encoding'];
      let mode = 'length';
      if (te && te.toLowerCase().includes('chunked')) mode = 'chunked';
      else if (headers['content-length'] === undefined) mode = status === 204 || status === 304 ? 'empty' : 'eof';
      p.head = { status, headers, mode, length: parseInt(headers['content-length'] || '0', 10) };
      data = p.buf.subarray(end + 4);
      p.buf = null;
      if (mode === 'empty') p.head.length = 0;
    }
    if (data.length) {
      p.chunks.push(data);
      p.got += data.length;
    }
    const h = p.head;
    if (h.mode === 'length' || h.mode === 'empty') {
      if (p.got >= h.length) {
        const all = p.chunks.length === 1 ? p.chunks[0] : Buffer.concat(p.chunks);
        this._finish(all.subarray(0, h.length));
      }
    } else if (h.mode === 'chunked') {
      const all = p.chunks.length === 1 ? p.chunks[0] : Buffer.concat(p.chunks);
      p.chunks = [all];
      const body = decodeChunked(all);
      if (body !== null) this._finish(body);
    }
  }

  _finish(body) {
    const p = this.pending;
    this.pending = null;
    const keepAlive = (p.head.headers.connection || '').toLowerCase() !== 'close' && p.head.mode !== 'eof';
    if (keepAlive) {
      this.reused = true;
      this.socket.unref(); // idle: let the event loop drain (callbackWaitsForEmptyEventLoop)
    } else {
      const socket = this.socket;
      this.socket = null;
      socket.destroy();
    }
    p.resolve({ status: p.head.status, headers: p.head.headers, body });
  }

  _onClose(error) {
    this.socket = null;
    const p = this.pending;
    if (p === null) return;
    if (p.head !== null && p.head.mode === 'eof') {
      this.pending = null;
      p.resolve({ status: p.head.status, headers: p.head.headers, body: Buffer.concat(p.chunks) });
      return;
    }
    // A keep-alive connection the server has since closed fails on first use: retry once, and only
    // when nothing of a response arrived.
    if (p.reused && !p.anyBytes && !p.retried) {
      p.retried = true;
      this._send();
      return;
    }
    this.pending = null;
    p.reject(error || new Error('Runtime API closed the connection'));
  }

  async nextInvocation() {
    const res = await this.request('GET', '/2018-06-01/runtime/invocation/next');
    if (res.status !== 200) {
      throw new Error(`GET /runtime/invocation/next returned HTTP ${res.status}: ${res.body.toString().slice(0, 200)}`);
    }
    return res;
  }

  async postChecked(requestPath, body, headers) {
    const res = await this.request('POST', requestPath, body, headers);
    if (res.status < 200 || res.status > 299) {
      // The server already decided this invocation's outcome (timed out, payload too large...).
      process.stderr.write(`stratus runtime: POST ${requestPath} returned HTTP ${res.status}: ${res.body.toString().slice(0, 200)}\n`);
    }
  }

  /** Throws synchronously when the result cannot be serialised, as AWS's client does. */
  postInvocationResponse(result, id, callback) {
    const body = serializeResponse(result);
    this.postChecked(`/2018-06-01/runtime/invocation/${encodeURIComponent(id)}/response`, body).then(callback, fatal);
  }

  postInvocationError(error, id, callback) {
    const body = serializeResponse(toRapidResponse(error));
    this.postChecked(`/2018-06-01/runtime/invocation/${encodeURIComponent(id)}/error`, body, {
      [ERROR_TYPE_HEADER]: 'Unhandled',
    }).then(callback, fatal);
  }

  postInitError(error, callback) {
    const response = toRapidResponse(error);
    this.postChecked('/2018-06-01/runtime/init/error', serializeResponse(response), {
      [ERROR_TYPE_HEADER]: response.errorType,
    }).then(callback, fatal);
  }
}

/** The body of a chunked message, or null while incomplete. Trailers are skipped. */
function decodeChunked(buf) {
  const parts = [];
  let pos = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return null;
    const size = parseInt(buf.toString('latin1', pos, eol).split(';')[0], 16);
    pos = eol + 2;
    if (size === 0) {
      for (;;) {
        const end = buf.indexOf('\r\n', pos);
        if (end < 0) return null;
        if (end === pos) return Buffer.concat(parts);
        pos = end + 2;
      }
    }
    if (buf.length < pos + size + 2) return null;
    parts.push(buf.subarray(pos, pos + size));
    pos += size + 2;
  }
}

function serializeResponse(body) {
  try {
    return JSON.stringify(body === undefined ? null : body);
  } catch (err) {
    throw new Error('Unable to stringify response body');
  }
}

function fatal(err) {
  process.stderr.write(`stratus runtime: Runtime API failure: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// Errors, shaped as AWS's runtime shapes them.

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
class NodeJsExit extends Error {
  constructor() {
    super('Runtime exited without providing a reason');
  }
}
for (const cls of [ImportModuleError, HandlerNotFound, MalformedHandlerName, UserCodeSyntaxError,
  UnhandledPromiseRejection, NodeJsExit]) {
  cls.prototype.name = `Runtime.${cls.name}`;
}

function isError(obj) {
  return obj && typeof obj.name === 'string' && typeof obj.message === 'string' && typeof obj.stack === 'string';
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isError(error)) {
      return { errorType: error.name, errorMessage: error.message, trace: error.stack.split('\n') };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch (_err) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(error) {
  if (error instanceof Error) {
    const ret = Object.assign({ errorType: error.name, errorMessage: error.message, code: error.code }, error);
    if (typeof error.stack === 'string') ret.stack = error.stack.split('\n');
    return ret;
  }
  return error;
}

/** The "\t{...}" part of AWS's "Invoke Error" / "Uncaught Exception" log lines. */
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (err) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

function logError(label, err) {
  console.error(label, toFormatted(intoError(err)));
}

// ---------------------------------------------------------------------------------------------
// console.*: "<ISO time>\t<request id>\t<LEVEL>\t<message>", newlines folded to "\r" so one call is
// one log line, as AWS's runtime writes them.

function patchConsole() {
  const levels = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };
  const minimum = levels[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || levels.TRACE;
  const out = process.stdout;
  const make = (level) => {
    if (levels[level] < minimum) return () => {};
    return (message, ...params) => {
      const line = `${new Date().toISOString()}\t${global[REQUEST_ID_SYMBOL]}\t${level}\t${util.format(message, ...params)}`;
      out.write(line.replace(/\n/g, '\r') + '\n');
    };
  };
  console.trace = make('TRACE');
  console.debug = make('DEBUG');
  console.info = make('INFO');
  console.log = console.info;
  console.warn = make('WARN');
  console.error = make('ERROR');
  console.fatal = make('FATAL');
}

// ---------------------------------------------------------------------------------------------
// Handler loading (AWS's UserFunction.js rules: file, .js, .mjs, .cjs, then require.resolve).

const FUNCTION_EXPR = /^([^.]*)\.(.*)$/;

function hasFolderPackageJsonTypeModule(folder) {
  if (folder.endsWith('/node_modules')) return false;
  const pj = path.join(folder, '/package.json');
  if (fs.existsSync(pj)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(pj));
      if (pkg) return pkg.type === 'module';
    } catch (e) {
      console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
      return false;
    }
  }
  if (folder === '/') return false;
  return hasFolderPackageJsonTypeModule(path.resolve(folder, '..'));
}

function tryRequireFile(file, extension) {
  const p = file + (extension || '');
  return fs.existsSync(p) ? require(p) : undefined;
}

async function tryAwaitImport(file, extension) {
  const p = file + (extension || '');
  return fs.existsSync(p) ? await import(url.pathToFileURL(p).href) : undefined;
}

async function tryRequire(appRoot, moduleRoot, module) {
  const lambdaStylePath = path.resolve(appRoot, moduleRoot, module);
  const extensionless = tryRequireFile(lambdaStylePath);
  if (extensionless) return extensionless;
  const pjHasModule = hasFolderPackageJsonTypeModule(path.resolve(path.dirname(lambdaStylePath)));
  if (!pjHasModule) {
    const loaded = tryRequireFile(lambdaStylePath, '.js');
    if (loaded) return loaded;
  }
  const loaded =
    (pjHasModule && (await tryAwaitImport(lambdaStylePath, '.js'))) ||
    (await tryAwaitImport(lambdaStylePath, '.mjs')) ||
    tryRequireFile(lambdaStylePath, '.cjs');
  if (loaded) return loaded;
  return require(require.resolve(module, { paths: [appRoot, moduleRoot] }));
}

async function loadHandler(appRoot, fullHandlerString) {
  if (fullHandlerString.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const handlerString = path.basename(fullHandlerString);
  const moduleRoot = fullHandlerString.substring(0, fullHandlerString.indexOf(handlerString));
  const match = handlerString.match(FUNCTION_EXPR);
  if (!match || match.length !== 3) throw new MalformedHandlerName('Bad handler');
  const [, module, handlerPath] = match;

  let userApp;
  try {
    userApp = await tryRequire(appRoot, moduleRoot, module);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e.code !== undefined && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }
  const handlerFunc = handlerPath.split('.').reduce((nested, key) => nested && nested[key], userApp);
  if (!handlerFunc) throw new HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
  if (typeof handlerFunc !== 'function') throw new HandlerNotFound(`${fullHandlerString} is not a function`);
  return handlerFunc;
}

/** NODE_PATH as AWS sets it unless the environment says otherwise; Node reads it only at start. */
function setupModulePaths(taskRoot) {
  if (!process.env.NODE_PATH) {
    const major = process.versions.node.split('.')[0];
    process.env.NODE_PATH = [
      `/opt/nodejs/node${major}/node_modules`,
      '/opt/nodejs/node_modules',
      '/var/runtime/node_modules',
      '/var/runtime',
      taskRoot,
    ].join(':');
  }
  Module._initPaths();
}

// ---------------------------------------------------------------------------------------------
// Invocation: callbacks, context, and the loop (AWS's Runtime.js / CallbackContext.js model).

// The function run on 'beforeExit' (the event loop drained). Callback-style handlers with
// callbackWaitsForEmptyEventLoop complete there; a handler that never answers gets null.
let beforeExitListener = () => {};
const errorCallbacks = {
  uncaughtException: (error) => client.postInitError(error, () => process.exit(129)),
  unhandledRejection: (error) => client.postInitError(error, () => process.exit(128)),
};

function buildCallbackContext(id, scheduleNext) {
  const postError = (err, callback) => {
    logError('Invoke Error', err);
    client.postInvocationError(err, id, callback);
  };
  let isCompleteInvoked = false;
  const complete = (result, callback) => {
    if (isCompleteInvoked) {
      console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
      return;
    }
    isCompleteInvoked = true;
    client.postInvocationResponse(result, id, callback);
  };
  let waitForEmptyEventLoop = true;
  const callback = (err, result) => {
    beforeExitListener = () => {};
    if (err !== undefined && err !== null) {
      postError(err, scheduleNext);
    } else if (!waitForEmptyEventLoop) {
      complete(result, scheduleNext);
    } else {
      beforeExitListener = () => setImmediate(() => complete(result, scheduleNext));
    }
  };
  const done = (err, result) => {
    beforeExitListener = () => {};
    if (err !== undefined && err !== null) postError(err, scheduleNext);
    else complete(result, scheduleNext);
  };
  let finished = false;
  const once = (fn) =>
    function () {
      if (!finished) {
        fn.apply(null, arguments);
        finished = true;
      }
    };
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: once((result) => done(null, result)),
    fail: once((err) => (err === undefined || err === null ? done('handled') : done(err, null))),
    done: once(done),
  };
  return [once(callback), context, () => { isCompleteInvoked = true; }];
}

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

// Read once: a function's environment does not change between invokes.
let staticContext;

function attachContext(target, headers) {
  const trace = headers['lambda-runtime-trace-id'];
  if (trace) process.env._X_AMZN_TRACE_ID = trace;
  else delete process.env._X_AMZN_TRACE_ID;
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  return Object.assign(target, staticContext, {
    clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
    identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    tenantId: headers['lambda-runtime-aws-tenant-id'],
    getRemainingTimeInMillis: () => deadline - Date.now(),
  });
}

let client;
let handler;
let handlerIsAsync = false;

function scheduleIteration() {
  setImmediate(() => {
    // Handler errors are caught inside; what reaches here is a Runtime API failure (it went away,
    // or /next answered non-200): nothing to report it to, so exit as the Python runtime does.
    handleOnce().catch(fatal);
  });
}

async function handleOnce() {
  const { headers, body } = await client.nextInvocation();
  const invokeId = headers['lambda-runtime-aws-request-id'];
  global[REQUEST_ID_SYMBOL] = invokeId;
  const [callback, callbackContext, markCompleted] = buildCallbackContext(invokeId, scheduleIteration);
  try {
    errorCallbacks.uncaughtException = (error) => client.postInvocationError(error, invokeId, () => process.exit(129));
    errorCallbacks.unhandledRejection = (error) => client.postInvocationError(error, invokeId, () => process.exit(128));
    beforeExitListener = () => {
      markCompleted();
      if (handlerIsAsync) {
        const err = new NodeJsExit();
        logError('Invoke Error', err);
        client.postInvocationError(err, invokeId, scheduleIteration);
      } else {
        client.postInvocationResponse(null, invokeId, scheduleIteration);
      }
    };
    const result = handler(JSON.parse(body.toString('utf8')), attachContext(callbackContext, headers), callback);
    if (result && typeof result.then === 'function') {
      result.then(callbackContext.succeed, callbackContext.fail).catch(callbackContext.fail);
    }
  } catch (err) {
    callback(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Start-up.

async function prestart() {
  // Stratus zygote: wait for the server to assign a function, then adopt its environment.
  require('http'); // paid now rather than in the function's init: most handlers use it
  let res;
  try {
    res = await client.request('GET', '/_stratus/v1/init');
  } catch (err) {
    process.stderr.write(`stratus runtime: GET /_stratus/v1/init failed: ${err}\n`);
    process.exit(1);
  }
  if (res.status !== 200) {
    process.stderr.write(`stratus runtime: GET /_stratus/v1/init returned HTTP ${res.status}\n`);
    process.exit(1);
  }
  let env;
  try {
    env = JSON.parse(res.body.toString('utf8')).env;
    if (!env || typeof env !== 'object') throw new Error('no "env" object');
  } catch (err) {
    process.stderr.write(`stratus runtime: bad /_stratus/v1/init body: ${err}\n`);
    process.exit(1);
  }
  delete process.env.STRATUS_PRESTART; // the function's processes are not zygotes
  const oldApi = process.env.AWS_LAMBDA_RUNTIME_API;
  for (const [name, value] of Object.entries(env)) process.env[name] = String(value);
  const newApi = process.env.AWS_LAMBDA_RUNTIME_API;
  if (newApi && newApi !== oldApi) client.connectTo(newApi);
}

async function main() {
  const api = process.env.AWS_LAMBDA_RUNTIME_API;
  if (!api) {
    process.stderr.write('stratus runtime: AWS_LAMBDA_RUNTIME_API is not set\n');
    process.exit(1);
  }
  client = new RuntimeApiClient(api);
  if (process.env.STRATUS_PRESTART === '1') await prestart();

  const taskRoot = process.env.LAMBDA_TASK_ROOT || '/var/task';
  try {
    process.chdir(taskRoot);
  } catch (_err) {
    // keep the current directory, as a missing task root will fail the import below anyway
  }
  setupModulePaths(taskRoot);
  patchConsole();
  staticContext = {
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
  };

  process.on('uncaughtException', (error) => {
    logError('Uncaught Exception', error);
    errorCallbacks.uncaughtException(error);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new UnhandledPromiseRejection(reason, promise);
    logError('Unhandled Promise Rejection', error);
    errorCallbacks.unhandledRejection(error);
  });
  process.on('beforeExit', () => {
    const listener = beforeExitListener;
    beforeExitListener = () => {};
    listener();
  });

  handler = await loadHandler(taskRoot, process.env._HANDLER || '');
  handlerIsAsync = handler.constructor && handler.constructor.name === 'AsyncFunction';
  scheduleIteration();
}

main().catch((error) => {
  // Load failures surface as AWS's runtime reports them: "Uncaught Exception", init error, exit.
  logError('Uncaught Exception', error);
  errorCallbacks.uncaughtException(error);
});
