// One js2p 0.7.870 SyncSocket driven by the interop tests over stdin/stdout.
//
// usage: node js2p_node.js PORT LEASING   (LEASING: default | true | false)
// Needs NODE_PATH to hold the node_modules where js2p is installed.
//
// Every request is one JSON line on stdin, every answer one JSON line on
// stdout. Keys are hex; values travel as hex msgpack, so bytes, text, ints,
// lists and maps keep their types across the driver boundary. js2p prints
// its own noise with console.log: that goes to stderr.
'use strict';

const js2p = require('js2p');
const msgpack = require('msgpack-lite');
const readline = require('readline');

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
console.log = (...args) => process.stderr.write(args.join(' ') + '\n');
console.warn = console.log;
console.info = console.log;

const port = parseInt(process.argv[2], 10);
const leasingArg = process.argv[3] || 'default';
// js2p's default (undefined) advertises leasing but does not enforce it.
const leasing = leasingArg === 'default' ? undefined : leasingArg === 'true';

const unhex = (h) => Buffer.from(h, 'hex');
const pack = (x) => msgpack.encode(x).toString('hex');

let sock;
// Messages taken from js2p's queue by `recv`, for `reply`.
const received = [];
process.on('uncaughtException', (err) => {
  if (err && err.code === 'EADDRINUSE') {
    out({error: 'EADDRINUSE'});
    process.exit(3);
  }
  // js2p throws from socket handlers on hostile or buggy traffic (a nil
  // store, bug J2): report it and keep serving, as js2p's own loop would.
  process.stderr.write('js2p exception: ' + (err && err.stack || err) + '\n');
});

try {
  sock = new js2p.sync.SyncSocket('127.0.0.1', port, undefined, leasing);
} catch (err) {
  out({error: String(err)});
  process.exit(3);
}

// js2p's server listens asynchronously: answer "ready" once it does.
const server = sock.incoming;
const ready = () => out({ready: true, id: String(sock.id),
                         protocol: String(sock.protocol.id)});
if (server && server.listening) {
  ready();
} else if (server) {
  server.once('listening', ready);
  server.once('error', (err) => {
    out({error: err.code || String(err)});
    process.exit(3);
  });
} else {
  ready();
}

const handlers = {
  set: (r) => { sock.set(unhex(r.key), msgpack.decode(unhex(r.value))); },
  delta: (r) => { sock.apply_delta(unhex(r.key), msgpack.decode(unhex(r.value))); },
  del: (r) => { sock.del(unhex(r.key)); },
  connect: (r) => { sock.connect(r.host, r.port); },
  items: () => {
    const items = [];
    for (const key of Object.keys(sock.data))
      items.push([Buffer.from(key), sock.data[key]]);
    return {items: pack(items)};
  },
  peers: () => ({peers: sock.routing_table.size}),
  // The mesh_socket half: send(packets) broadcasts as js2p's send() does;
  // recv drains js2p's queue into `received` (reply refers to it by index).
  send: (r) => { sock.send(msgpack.decode(unhex(r.packets))); },
  recv: () => {
    const msgs = [];
    let msg;
    while ((msg = sock.recv()) !== undefined && msg !== null) {
      received.push(msg);
      msgs.push({index: received.length - 1,
                 sender: Buffer.from(String(msg.sender)).toString('hex'),
                 whisper: msg.msg.msg_type === 2,
                 packets: pack(msg.packets)});
    }
    return {messages: msgs};
  },
  reply: (r) => { received[r.index].reply(msgpack.decode(unhex(r.packets))); },
  quit: () => {
    try { sock.close(); } catch (e) { /* closing is best effort */ }
    out({ok: true});
    process.exit(0);
  },
};

const rl = readline.createInterface({input: process.stdin});
rl.on('line', (line) => {
  let req;
  try {
    req = JSON.parse(line);
    const h = handlers[req.op];
    if (!h)
      throw new Error('unknown op ' + req.op);
    out(Object.assign({ok: true}, h(req) || {}));
  } catch (err) {
    out({error: String(err && err.message || err)});
  }
});
// The driver went away: so do we (nothing lingers after a test).
rl.on('close', () => process.exit(0));
