//! `environ`: set/get/remove operations on three environs — a fresh one (`a`), a second one
//! (`b`: fresh, the handler's base through gw_handler_copy_os_environ, or the process
//! environment) and, during a run, the request's — while `a` or `b` become the handler's base
//! (gw_handler_set_os_environ, which leaves them layered over the snapshot). After every
//! operation each environ must read back (gw_environ_len and gw_environ_next) exactly as its
//! model: an ordered list of pairs with dict semantics, where setting a name keeps its place
//! and removing then setting it moves it to the end. Refused names change nothing.

use std::sync::LazyLock;

use crate::ffi::{
    free_null_environ, Config, Env, Handler, HookResult, Host, OwnedEnv, Pair, Req, Status,
};
use crate::script::Reader;
use crate::wire::{show, show_pairs};

/// Names that collide, names the environ refuses (empty, '=' or NUL), and names that matter
/// to the request environ; raw bytes beyond.
const NAMES: &[&[u8]] = &[
    b"A",
    b"B",
    b"C",
    b"HTTPS",
    b"wsgi.input",
    b"wsgi.url_scheme",
    b"\xc4",
    b"",
    b"=",
    b"A=B",
    b"A\0",
    b"\0",
];

const VALUES: &[&[u8]] = &[b"on", b"1", b"yes", b"ON", b"", b"v\0w"];

const MAX_NAME_LEN: usize = gateway::ffi::GW_ENVIRON_MAX_NAME_LEN;
const MAX_VALUE_LEN: usize = gateway::ffi::GW_ENVIRON_MAX_VALUE_LEN;

/// Operations per input, so that no input runs for long.
const MAX_OPS: usize = 200;

type Model = Vec<Pair>;

fn model_get<'m>(model: &'m Model, name: &[u8]) -> Option<&'m [u8]> {
    model
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

fn model_set(model: &mut Model, name: &[u8], value: &[u8]) {
    match model.iter_mut().find(|(n, _)| n == name) {
        Some(pair) => pair.1 = value.to_vec(),
        None => model.push((name.to_vec(), value.to_vec())),
    }
}

fn refused(name: &[u8]) -> bool {
    name.is_empty() || name.contains(&0) || name.contains(&b'=')
}

/// What a request environ over `base` holds before the app sees it (no CGI variables here):
/// wsgiref's wsgi.* keys in wsgiref's order, and wsgi.input_terminated.
fn request_model(base: &Model) -> Model {
    let mut model = base.clone();
    let scheme: &[u8] = match model_get(base, b"HTTPS") {
        Some(b"yes" | b"on" | b"1") => b"https",
        _ => b"http",
    };
    let keys: [(&[u8], &[u8]); 9] = [
        (b"wsgi.input", b"gw_request_input"),
        (b"wsgi.errors", b"gw_request_errors"),
        (b"wsgi.version", b"1.0"),
        (b"wsgi.run_once", b"0"),
        (b"wsgi.url_scheme", scheme),
        (b"wsgi.multithread", b"1"),
        (b"wsgi.multiprocess", b"1"),
        (b"wsgi.file_wrapper", b"gw_request_set_body_file"),
        (b"wsgi.input_terminated", b"1"),
    ];
    for (name, value) in keys {
        model_set(&mut model, name, value);
    }
    model
}

fn check(env: Env, model: &Model, what: &str) {
    // Compared in place: this runs after every operation.
    let (mut i, mut same) = (0, true);
    env.visit(|name, value| {
        same = model.get(i).is_some_and(|(n, v)| n == name && v == value);
        i += 1;
        same
    });
    if !same || i != model.len() {
        let pairs = env.pairs();
        panic!(
            "{what} reads back {:?}, model {:?}",
            show_pairs(&pairs),
            show_pairs(model)
        );
    }
    assert_eq!(env.len(), model.len(), "gw_environ_len of {what}");
}

/// An environ and its model.
struct Slot {
    env: OwnedEnv,
    model: Model,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            env: OwnedEnv::new(),
            model: Model::new(),
        }
    }
}

/// The host of a handler whose output does not matter.
struct Sink;

impl Host for Sink {
    fn write(&self, data: &[u8]) -> HookResult {
        Ok(data.len())
    }
}

struct Fuzz<'a> {
    r: Reader<'a>,
    ops: usize,
    a: Slot,
    b: Slot,
    /// The handler's base environ.
    base: Model,
}

impl Fuzz<'_> {
    /// Plays operations until the input ends or, inside a run (`request` is the request's
    /// environ and model), until an operation ends the run.
    fn play(&mut self, handler: &Handler<Sink>, mut request: Option<(Env, &mut Model)>) {
        while !self.r.is_empty() && self.ops < MAX_OPS {
            self.ops += 1;
            let running = request.is_some();
            let op = self.r.below(11);
            let which = self.r.below(3);
            let (env, model, what) = match (which, request.as_mut()) {
                (2, Some((env, model))) => (*env, &mut **model, "the request environ"),
                (1, _) => (self.b.env.env(), &mut self.b.model, "environ b"),
                _ => (self.a.env.env(), &mut self.a.model, "environ a"),
            };
            match op {
                0 | 1 => {
                    let (name, value) = (
                        self.r.pick_or_raw(NAMES, 10),
                        self.r.pick_or_raw(VALUES, 16),
                    );
                    let expected = match refused(&name) {
                        true => Status::InvalidArgument,
                        false => Status::Ok,
                    };
                    assert_eq!(
                        env.set(&name, &value),
                        expected,
                        "set {:?} in {what}",
                        show(&name)
                    );
                    if expected == Status::Ok {
                        model_set(model, &name, &value);
                    }
                }
                2 => {
                    let name = self.r.pick_or_raw(NAMES, 10);
                    let got = env.get(&name);
                    match model_get(model, &name) {
                        Some(value) => {
                            assert_eq!(got.as_deref(), Ok(value), "get {:?}", show(&name))
                        }
                        None => assert!(
                            got == Err(Status::NotFound)
                                || refused(&name) && got == Err(Status::InvalidArgument),
                            "get {:?} from {what}: {got:?}, absent in the model",
                            show(&name)
                        ),
                    }
                }
                3 => {
                    let name = self.r.pick_or_raw(NAMES, 10);
                    let got = env.remove(&name);
                    match model.iter().position(|(n, _)| *n == name) {
                        Some(i) => {
                            assert_eq!(got, Status::Ok, "remove {:?} from {what}", show(&name));
                            model.remove(i);
                        }
                        None => assert!(
                            got == Status::NotFound
                                || refused(&name) && got == Status::InvalidArgument,
                            "remove {:?} from {what}: {got:?}, absent in the model",
                            show(&name)
                        ),
                    }
                }
                4 => {
                    // The handler takes a snapshot; the environ itself reads the same after.
                    let (env, snapshot) = match which {
                        0 => (Some(self.a.env.env()), self.a.model.clone()),
                        1 => (Some(self.b.env.env()), self.b.model.clone()),
                        _ => (None, Model::new()),
                    };
                    let got = handler.set_os_environ(env);
                    if running {
                        assert_eq!(got, Status::InvalidState, "set_os_environ during a run");
                    } else {
                        assert_eq!(got, Status::Ok);
                        self.base = snapshot;
                    }
                }
                5 => match handler.os_environ() {
                    Ok(env) if !running => {
                        self.b = Slot {
                            env,
                            model: self.base.clone(),
                        }
                    }
                    got => assert!(running && got.is_err(), "get_os_environ: running {running}"),
                },
                6 => {
                    let mut model = Model::new();
                    for (name, value) in std::env::vars_os() {
                        use std::os::unix::ffi::OsStrExt;
                        model_set(&mut model, name.as_bytes(), value.as_bytes());
                    }
                    self.b = Slot {
                        env: OwnedEnv::from_process(),
                        model,
                    };
                }
                7 if running => {
                    let got = handler.run(|_| panic!("a nested run called the app"));
                    assert_eq!(
                        got,
                        Status::InvalidState,
                        "gw_handler_run inside its own run"
                    );
                }
                7 => {
                    let status = handler.run(|req: Req| {
                        let env = req.environ();
                        let mut model = request_model(&self.base);
                        check(env, &model, "the new request environ");
                        self.play(handler, Some((env, &mut model)));
                        req.start_response(b"200 OK", &[], 0)
                    });
                    assert_eq!(status, Status::Ok);
                }
                8 if running => return,
                8 => {}
                9 => {
                    // A request's environ belongs to its handler: freeing it is refused.
                    match &request {
                        Some((env, _)) => assert_eq!(env.free_borrowed(), Status::InvalidState),
                        None => assert_eq!(free_null_environ(), Status::Ok),
                    }
                }
                _ => {
                    // Too large: refused, nothing changes.
                    static BIG: LazyLock<Vec<u8>> =
                        LazyLock::new(|| vec![b'x'; MAX_NAME_LEN.max(MAX_VALUE_LEN) + 1]);
                    let (name, value) = match self.r.flag() {
                        true => (&BIG[..MAX_NAME_LEN + 1], &b""[..]),
                        false => (&b"A"[..], &BIG[..MAX_VALUE_LEN + 1]),
                    };
                    assert_eq!(env.set(name, value), Status::TooLarge, "oversized set");
                }
            }
            // Every environ after the operations that share or copy; otherwise the one
            // changed (a leak into another is found at its next full check).
            let current = request.as_ref().map(|(env, model)| (*env, &**model));
            match (op, which, current) {
                (4..=7, ..) => self.check_all(current),
                _ if self.r.is_empty() || self.ops == MAX_OPS => self.check_all(current),
                (_, 2, Some((env, model))) => check(env, model, "the request environ"),
                (_, 1, _) => check(self.b.env.env(), &self.b.model, "environ b"),
                _ => check(self.a.env.env(), &self.a.model, "environ a"),
            }
        }
    }

    fn check_all(&self, request: Option<(Env, &Model)>) {
        check(self.a.env.env(), &self.a.model, "environ a");
        check(self.b.env.env(), &self.b.model, "environ b");
        if let Some((env, model)) = request {
            check(env, model, "the request environ");
        }
    }
}

pub fn run(data: &[u8]) {
    let config = Config {
        origin: false,
        http11: false,
        file_wrapper: true,
    };
    let handler = Handler::new(&Sink, config);
    let mut fuzz = Fuzz {
        r: Reader::new(data),
        ops: 0,
        a: Slot::new(),
        b: Slot::new(),
        base: Model::new(),
    };
    fuzz.play(&handler, None);
    // The base never saw the changes made to its source after the snapshot.
    let base = handler.os_environ().expect("get_os_environ");
    check(base.env(), &fuzz.base, "the handler's base environ");
}
