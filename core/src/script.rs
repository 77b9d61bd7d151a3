//! The v1 KISSVM subset (SPEC §2): tokenizer, parser and evaluator with hard limits.
//!
//! Grammar (keywords upper case, variables lower case):
//! ```text
//! program := stmt*
//! stmt    := LET var = expr | RETURN expr | ASSERT expr
//!          | IF expr THEN stmt* (ELSEIF expr THEN stmt*)* [ELSE stmt*] ENDIF
//! expr    := and (OR and)*          and := not (AND not)*      not := NOT not | cmp
//! cmp     := sum [(EQ|NEQ|LT|GT|LTE|GTE) sum]
//! sum     := prod ((+|-) prod)*     prod := unary ((*|/|%) unary)*   unary := - unary | atom
//! atom    := number | 0xHEX | TRUE | FALSE | var | @GLOBAL | FUNC(args) | ( expr )
//! ```
//! Decisions where SPEC is silent (pinned by golden tests):
//! - Types are strict: arithmetic and `LT`… take NUMBERs, `AND/OR/NOT/IF/ASSERT/RETURN` take
//!   BOOLs, `EQ/NEQ` compare values of one type. Anything else fails the script.
//! - `AND`/`OR` short-circuit. Every statement and every evaluated expression node costs one
//!   instruction; `CHECKSIG` costs [`Limits::checksig_cost`] and one sig-op, even when cached.
//! - Nesting (parentheses, unary operators, `IF` blocks, function arguments, and each operator
//!   of a chain like `a + b + c`, which nests to the left) deeper than [`Limits::max_stack`]
//!   fails at parse time, so evaluation recursion is bounded too.
//! - A script that ends without `RETURN` fails; `RETURN FALSE` fails; only `RETURN TRUE` passes.
//! - `STATE(p)` is the transaction's state at port p, `PREVSTATE(p)` the spent coin's; both are
//!   HEX and fail when the port is absent. `@COINAGE` = `@BLOCK` − the coin's `created`.
//! - `VERIFYOUT(i, address, amount, token)` is TRUE when output i exists with exactly those
//!   values; `MULTISIG(n, pk…)` is TRUE when at least n distinct listed keys signed.

use std::collections::{HashMap, HashSet};

use thiserror::Error;

use crate::crypto::{self, Hash, PublicKey, Signature};
use crate::params::Params;
use crate::types::{Coin, Transaction};

/// Hard limits of one script run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Instructions one run may execute.
    pub max_instructions: u32,
    /// Deepest nesting.
    pub max_stack: usize,
    /// Largest value, bytes.
    pub max_value_bytes: usize,
    /// Longest script, bytes.
    pub max_script_bytes: usize,
    /// Instructions a `CHECKSIG` costs.
    pub checksig_cost: u32,
    /// `CHECKSIG` sig-ops this run may still execute (the TxPoW's and block's budgets left).
    pub max_sigops: u32,
}

impl Limits {
    /// The limits of a parameter set.
    pub fn from_params(p: &Params) -> Limits {
        Limits {
            max_instructions: p.magic.max_script_ops,
            max_stack: p.max_script_stack,
            max_value_bytes: p.max_script_value_bytes,
            max_script_bytes: p.max_script_bytes,
            checksig_cost: p.checksig_cost,
            max_sigops: p.magic.max_sigops_txpow,
        }
    }
}

/// Why a script did not pass. Every failure is one of these; nothing panics.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScriptError {
    /// Longer than the limit.
    #[error("script of {0} bytes exceeds the limit")]
    TooLong(usize),
    /// A character or literal that is not part of the language.
    #[error("bad token at byte {0}")]
    Token(usize),
    /// Not a valid program.
    #[error("parse error: {0}")]
    Parse(&'static str),
    /// Nesting deeper than the stack limit.
    #[error("nesting exceeds the stack limit")]
    StackDepth,
    /// Ran out of instructions.
    #[error("instruction limit exhausted")]
    InstructionLimit,
    /// More `CHECKSIG` sig-ops than the TxPoW or block has left.
    #[error("sig-op limit exhausted")]
    SigopLimit,
    /// A value of the wrong type.
    #[error("type error: {0}")]
    Type(&'static str),
    /// Arithmetic overflow.
    #[error("arithmetic overflow")]
    Overflow,
    /// Division or remainder by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A variable read before `LET`.
    #[error("undefined variable")]
    UndefinedVariable,
    /// A function or global the language lacks.
    #[error("unknown function or global")]
    Unknown,
    /// A function argument out of range or of the wrong shape.
    #[error("bad argument: {0}")]
    BadArgument(&'static str),
    /// A value over the size limit.
    #[error("value exceeds the size limit")]
    ValueTooLarge,
    /// `STATE`/`PREVSTATE` of a missing port.
    #[error("state port {0} is not set")]
    StateMissing(u8),
    /// `ASSERT` of FALSE.
    #[error("ASSERT failed")]
    AssertFailed,
    /// `RETURN FALSE`.
    #[error("script returned FALSE")]
    ReturnedFalse,
    /// The script ended without `RETURN`.
    #[error("script ended without RETURN")]
    NoReturn,
}

/// A script value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Bytes.
    Hex(Vec<u8>),
    /// A signed 128-bit integer.
    Number(i128),
    /// TRUE or FALSE.
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Var(String),
    Global(String),
    Num(i128),
    Hex(Vec<u8>),
    LParen,
    RParen,
    Comma,
    Assign,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, ScriptError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push(Tok::LParen);
                i += 1
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1
            }
            b'=' => {
                out.push(Tok::Assign);
                i += 1
            }
            b'+' => {
                out.push(Tok::Plus);
                i += 1
            }
            b'-' => {
                out.push(Tok::Minus);
                i += 1
            }
            b'*' => {
                out.push(Tok::Star);
                i += 1
            }
            b'/' => {
                out.push(Tok::Slash);
                i += 1
            }
            b'%' => {
                out.push(Tok::Percent);
                i += 1
            }
            b'0' if b.get(i + 1) == Some(&b'x') || b.get(i + 1) == Some(&b'X') => {
                i += 2;
                let hs = i;
                while i < b.len() && b[i].is_ascii_hexdigit() {
                    i += 1;
                }
                if i < b.len() && b[i].is_ascii_alphanumeric() {
                    return Err(ScriptError::Token(start));
                }
                let v = hex::decode(&s[hs..i]).map_err(|_| ScriptError::Token(start))?;
                out.push(Tok::Hex(v));
            }
            b'0'..=b'9' => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i < b.len() && b[i].is_ascii_alphanumeric() {
                    return Err(ScriptError::Token(start));
                }
                let n: i128 = s[start..i].parse().map_err(|_| ScriptError::Overflow)?;
                out.push(Tok::Num(n));
            }
            b'@' => {
                i += 1;
                while i < b.len() && b[i].is_ascii_uppercase() {
                    i += 1;
                }
                out.push(Tok::Global(s[start + 1..i].to_string()));
            }
            b'A'..=b'Z' => {
                while i < b.len() && (b[i].is_ascii_uppercase() || b[i].is_ascii_digit()) {
                    i += 1;
                }
                out.push(Tok::Word(s[start..i].to_string()));
            }
            b'a'..=b'z' => {
                while i < b.len() && (b[i].is_ascii_lowercase() || b[i].is_ascii_digit() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Tok::Var(s[start..i].to_string()));
            }
            _ => return Err(ScriptError::Token(start)),
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Neq,
    Lt,
    Gt,
    Lte,
    Gte,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    SignedBy,
    MultiSig,
    CheckSig,
    Sha3,
    State,
    PrevState,
    VerifyOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Global {
    Block,
    CoinAge,
    Amount,
    Address,
    TokenId,
    Input,
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Var(String),
    Global(Global),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone)]
enum Stmt {
    Let(String, Expr),
    Return(Expr),
    Assert(Expr),
    If(Vec<(Expr, Vec<Stmt>)>, Option<Vec<Stmt>>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    max_depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }
    fn expect_word(&mut self, w: &'static str) -> Result<(), ScriptError> {
        if self.is_word(w) {
            self.pos += 1;
            Ok(())
        } else {
            Err(ScriptError::Parse(w))
        }
    }
    fn enter(&mut self) -> Result<(), ScriptError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(ScriptError::StackDepth);
        }
        Ok(())
    }
    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn block(&mut self, ends: &[&str]) -> Result<Vec<Stmt>, ScriptError> {
        let mut v = Vec::new();
        loop {
            match self.peek() {
                None => return Ok(v),
                Some(Tok::Word(w)) if ends.contains(&w.as_str()) => return Ok(v),
                _ => v.push(self.stmt()?),
            }
        }
    }

    fn stmt(&mut self) -> Result<Stmt, ScriptError> {
        match self.next() {
            Some(Tok::Word(w)) => match w.as_str() {
                "LET" => {
                    let name = match self.next() {
                        Some(Tok::Var(n)) => n,
                        _ => return Err(ScriptError::Parse("LET needs a variable")),
                    };
                    if self.next() != Some(Tok::Assign) {
                        return Err(ScriptError::Parse("LET needs ="));
                    }
                    Ok(Stmt::Let(name, self.expr()?))
                }
                "RETURN" => Ok(Stmt::Return(self.expr()?)),
                "ASSERT" => Ok(Stmt::Assert(self.expr()?)),
                "IF" => {
                    self.enter()?;
                    let mut arms = Vec::new();
                    let c = self.expr()?;
                    self.expect_word("THEN")?;
                    let b = self.block(&["ELSEIF", "ELSE", "ENDIF"])?;
                    arms.push((c, b));
                    let mut els = None;
                    loop {
                        match self.next() {
                            Some(Tok::Word(w)) if w == "ELSEIF" => {
                                let c = self.expr()?;
                                self.expect_word("THEN")?;
                                let b = self.block(&["ELSEIF", "ELSE", "ENDIF"])?;
                                arms.push((c, b));
                            }
                            Some(Tok::Word(w)) if w == "ELSE" => {
                                els = Some(self.block(&["ENDIF"])?);
                                self.expect_word("ENDIF")?;
                                break;
                            }
                            Some(Tok::Word(w)) if w == "ENDIF" => break,
                            _ => return Err(ScriptError::Parse("IF without ENDIF")),
                        }
                    }
                    self.leave();
                    Ok(Stmt::If(arms, els))
                }
                _ => Err(ScriptError::Parse("expected a statement")),
            },
            _ => Err(ScriptError::Parse("expected a statement")),
        }
    }

    /// A chain `a op b op c …` nests to the left: every operator is one more level, so the
    /// evaluator's recursion is bounded by the stack limit too.
    fn chain_level(&mut self, levels: &mut usize) -> Result<(), ScriptError> {
        self.enter()?;
        *levels += 1;
        Ok(())
    }

    fn unwind(&mut self, levels: usize) {
        self.depth -= levels;
    }

    fn expr(&mut self) -> Result<Expr, ScriptError> {
        self.enter()?;
        let mut levels = 0;
        let mut l = self.and()?;
        while self.is_word("OR") {
            self.pos += 1;
            self.chain_level(&mut levels)?;
            let r = self.and()?;
            l = Expr::Bin(BinOp::Or, Box::new(l), Box::new(r));
        }
        self.unwind(levels);
        self.leave();
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, ScriptError> {
        let mut levels = 0;
        let mut l = self.not()?;
        while self.is_word("AND") {
            self.pos += 1;
            self.chain_level(&mut levels)?;
            let r = self.not()?;
            l = Expr::Bin(BinOp::And, Box::new(l), Box::new(r));
        }
        self.unwind(levels);
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, ScriptError> {
        if self.is_word("NOT") {
            self.pos += 1;
            self.enter()?;
            let e = self.not()?;
            self.leave();
            return Ok(Expr::Not(Box::new(e)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, ScriptError> {
        let l = self.sum()?;
        let op = match self.peek() {
            Some(Tok::Word(w)) => match w.as_str() {
                "EQ" => Some(BinOp::Eq),
                "NEQ" => Some(BinOp::Neq),
                "LT" => Some(BinOp::Lt),
                "GT" => Some(BinOp::Gt),
                "LTE" => Some(BinOp::Lte),
                "GTE" => Some(BinOp::Gte),
                _ => None,
            },
            _ => None,
        };
        match op {
            Some(op) => {
                self.pos += 1;
                let r = self.sum()?;
                Ok(Expr::Bin(op, Box::new(l), Box::new(r)))
            }
            None => Ok(l),
        }
    }

    fn sum(&mut self) -> Result<Expr, ScriptError> {
        let mut levels = 0;
        let mut l = self.prod()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Plus) => BinOp::Add,
                Some(Tok::Minus) => BinOp::Sub,
                _ => {
                    self.unwind(levels);
                    return Ok(l);
                }
            };
            self.pos += 1;
            self.chain_level(&mut levels)?;
            let r = self.prod()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn prod(&mut self) -> Result<Expr, ScriptError> {
        let mut levels = 0;
        let mut l = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Star) => BinOp::Mul,
                Some(Tok::Slash) => BinOp::Div,
                Some(Tok::Percent) => BinOp::Rem,
                _ => {
                    self.unwind(levels);
                    return Ok(l);
                }
            };
            self.pos += 1;
            self.chain_level(&mut levels)?;
            let r = self.unary()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn unary(&mut self) -> Result<Expr, ScriptError> {
        if self.peek() == Some(&Tok::Minus) {
            self.pos += 1;
            self.enter()?;
            let e = self.unary()?;
            self.leave();
            return Ok(Expr::Neg(Box::new(e)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, ScriptError> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(Expr::Lit(Value::Number(n))),
            Some(Tok::Hex(h)) => Ok(Expr::Lit(Value::Hex(h))),
            Some(Tok::Var(v)) => Ok(Expr::Var(v)),
            Some(Tok::Global(g)) => Ok(Expr::Global(match g.as_str() {
                "BLOCK" => Global::Block,
                "COINAGE" => Global::CoinAge,
                "AMOUNT" => Global::Amount,
                "ADDRESS" => Global::Address,
                "TOKENID" => Global::TokenId,
                "INPUT" => Global::Input,
                _ => return Err(ScriptError::Unknown),
            })),
            Some(Tok::LParen) => {
                let e = self.expr()?;
                if self.next() != Some(Tok::RParen) {
                    return Err(ScriptError::Parse("missing )"));
                }
                Ok(e)
            }
            Some(Tok::Word(w)) => {
                let f = match w.as_str() {
                    "TRUE" => return Ok(Expr::Lit(Value::Bool(true))),
                    "FALSE" => return Ok(Expr::Lit(Value::Bool(false))),
                    "SIGNEDBY" => Func::SignedBy,
                    "MULTISIG" => Func::MultiSig,
                    "CHECKSIG" => Func::CheckSig,
                    "SHA3" => Func::Sha3,
                    "STATE" => Func::State,
                    "PREVSTATE" => Func::PrevState,
                    "VERIFYOUT" => Func::VerifyOut,
                    _ => return Err(ScriptError::Unknown),
                };
                if self.next() != Some(Tok::LParen) {
                    return Err(ScriptError::Parse("function needs ("));
                }
                let mut args = Vec::new();
                if self.peek() != Some(&Tok::RParen) {
                    loop {
                        args.push(self.expr()?);
                        match self.next() {
                            Some(Tok::Comma) => continue,
                            Some(Tok::RParen) => break,
                            _ => return Err(ScriptError::Parse("bad argument list")),
                        }
                    }
                } else {
                    self.pos += 1;
                }
                let arity_ok = match f {
                    Func::SignedBy | Func::Sha3 | Func::State | Func::PrevState => args.len() == 1,
                    Func::CheckSig => args.len() == 3,
                    Func::VerifyOut => args.len() == 4,
                    Func::MultiSig => (2..=33).contains(&args.len()),
                };
                if !arity_ok {
                    return Err(ScriptError::Parse("wrong number of arguments"));
                }
                Ok(Expr::Call(f, args))
            }
            _ => Err(ScriptError::Parse("expected a value")),
        }
    }
}

/// A parsed script, ready to run.
#[derive(Debug, Clone)]
pub struct Script {
    prog: Vec<Stmt>,
}

impl Script {
    /// Tokenize and parse, enforcing the size and nesting limits.
    pub fn parse(src: &str, limits: &Limits) -> Result<Script, ScriptError> {
        if src.len() > limits.max_script_bytes {
            return Err(ScriptError::TooLong(src.len()));
        }
        let toks = tokenize(src)?;
        let mut p = Parser { toks, pos: 0, depth: 0, max_depth: limits.max_stack };
        let prog = p.block(&[])?;
        if p.pos < p.toks.len() {
            return Err(ScriptError::Parse("unexpected token"));
        }
        Ok(Script { prog })
    }
}

/// Instructions an operation over `bytes` bytes costs (SPEC-v2 §14.4's `bc`):
/// `max(1, ⌈bytes / 64⌉)`.
pub fn byte_cost(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(64)).unwrap_or(u32::MAX).max(1)
}

/// Results of `CHECKSIG` verifications, shared by every script of one block.
#[derive(Debug, Default)]
pub struct SigCache(HashMap<Hash, bool>);

impl SigCache {
    /// An empty cache.
    pub fn new() -> SigCache {
        SigCache::default()
    }
}

/// What a script may look at.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Number of the block that includes the transaction (tip + 1 in the mempool).
    pub block: u64,
    /// Position of the input being checked.
    pub input_index: usize,
    /// The coin being spent.
    pub coin: &'a Coin,
    /// Block that created the coin.
    pub created: u64,
    /// The whole transaction.
    pub tx: &'a Transaction,
    /// Keys whose signatures in the witness verified.
    pub signers: &'a [PublicKey],
}

/// Cost of a successful run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Instructions executed.
    pub instructions: u32,
    /// `CHECKSIG` calls executed.
    pub sigops: u32,
    /// Whether the run read `@BLOCK` or `@COINAGE`: only then can its result differ at
    /// another height (every other input is fixed by the transaction and the coin).
    pub reads_height: bool,
}

struct Vm<'a, 'c> {
    ctx: Context<'a>,
    limits: Limits,
    vars: HashMap<String, Value>,
    stats: RunStats,
    cache: &'c mut SigCache,
}

enum Flow {
    Continue,
    Return(bool),
}

impl Vm<'_, '_> {
    fn tick(&mut self, n: u32) -> Result<(), ScriptError> {
        self.stats.instructions = self.stats.instructions.saturating_add(n);
        if self.stats.instructions > self.limits.max_instructions {
            return Err(ScriptError::InstructionLimit);
        }
        Ok(())
    }

    fn run_block(&mut self, b: &[Stmt]) -> Result<Flow, ScriptError> {
        for s in b {
            self.tick(1)?;
            match s {
                Stmt::Let(n, e) => {
                    let v = self.eval(e)?;
                    self.vars.insert(n.clone(), v);
                }
                Stmt::Return(e) => return Ok(Flow::Return(self.bool(e)?)),
                Stmt::Assert(e) => {
                    if !self.bool(e)? {
                        return Err(ScriptError::AssertFailed);
                    }
                }
                Stmt::If(arms, els) => {
                    let mut taken = false;
                    for (c, body) in arms {
                        if self.bool(c)? {
                            taken = true;
                            if let Flow::Return(r) = self.run_block(body)? {
                                return Ok(Flow::Return(r));
                            }
                            break;
                        }
                    }
                    if !taken {
                        if let Some(body) = els {
                            if let Flow::Return(r) = self.run_block(body)? {
                                return Ok(Flow::Return(r));
                            }
                        }
                    }
                }
            }
        }
        Ok(Flow::Continue)
    }

    fn bool(&mut self, e: &Expr) -> Result<bool, ScriptError> {
        match self.eval(e)? {
            Value::Bool(b) => Ok(b),
            _ => Err(ScriptError::Type("expected BOOL")),
        }
    }
    fn num(&mut self, e: &Expr) -> Result<i128, ScriptError> {
        match self.eval(e)? {
            Value::Number(n) => Ok(n),
            _ => Err(ScriptError::Type("expected NUMBER")),
        }
    }
    fn hex(&mut self, e: &Expr) -> Result<Vec<u8>, ScriptError> {
        match self.eval(e)? {
            Value::Hex(h) => Ok(h),
            _ => Err(ScriptError::Type("expected HEX")),
        }
    }
    fn key(&mut self, e: &Expr) -> Result<PublicKey, ScriptError> {
        let h = self.hex(e)?;
        let a: [u8; 32] =
            h.try_into().map_err(|_| ScriptError::BadArgument("public key must be 32 bytes"))?;
        Ok(PublicKey(a))
    }
    fn port(&mut self, e: &Expr) -> Result<u8, ScriptError> {
        let n = self.num(e)?;
        u8::try_from(n).map_err(|_| ScriptError::BadArgument("port must be 0..=255"))
    }

    fn eval(&mut self, e: &Expr) -> Result<Value, ScriptError> {
        self.tick(1)?;
        let v = match e {
            Expr::Lit(v) => v.clone(),
            Expr::Var(n) => self.vars.get(n).cloned().ok_or(ScriptError::UndefinedVariable)?,
            Expr::Global(g) => match g {
                Global::Block => {
                    self.stats.reads_height = true;
                    Value::Number(self.ctx.block as i128)
                }
                Global::CoinAge => {
                    self.stats.reads_height = true;
                    Value::Number(self.ctx.block as i128 - self.ctx.created as i128)
                }
                Global::Amount => Value::Number(self.ctx.coin.amount as i128),
                Global::Address => Value::Hex(self.ctx.coin.address.0.to_vec()),
                Global::TokenId => Value::Hex(self.ctx.coin.token_id.0.to_vec()),
                Global::Input => Value::Number(self.ctx.input_index as i128),
            },
            Expr::Neg(x) => Value::Number(self.num(x)?.checked_neg().ok_or(ScriptError::Overflow)?),
            Expr::Not(x) => Value::Bool(!self.bool(x)?),
            Expr::Bin(op, l, r) => self.bin(*op, l, r)?,
            Expr::Call(f, args) => self.call(*f, args)?,
        };
        if let Value::Hex(h) = &v {
            if h.len() > self.limits.max_value_bytes {
                return Err(ScriptError::ValueTooLarge);
            }
        }
        Ok(v)
    }

    fn bin(&mut self, op: BinOp, l: &Expr, r: &Expr) -> Result<Value, ScriptError> {
        Ok(match op {
            BinOp::And => Value::Bool(self.bool(l)? && self.bool(r)?),
            BinOp::Or => Value::Bool(self.bool(l)? || self.bool(r)?),
            BinOp::Eq | BinOp::Neq => {
                let a = self.eval(l)?;
                let b = self.eval(r)?;
                if std::mem::discriminant(&a) != std::mem::discriminant(&b) {
                    return Err(ScriptError::Type("EQ/NEQ of different types"));
                }
                if let (Value::Hex(x), Value::Hex(y)) = (&a, &b) {
                    // A HEX comparison costs bc (its node's 1 already paid).
                    self.tick(byte_cost(x.len() + y.len()) - 1)?;
                }
                Value::Bool((a == b) == (op == BinOp::Eq))
            }
            _ => {
                let a = self.num(l)?;
                let b = self.num(r)?;
                match op {
                    BinOp::Add => Value::Number(a.checked_add(b).ok_or(ScriptError::Overflow)?),
                    BinOp::Sub => Value::Number(a.checked_sub(b).ok_or(ScriptError::Overflow)?),
                    BinOp::Mul => Value::Number(a.checked_mul(b).ok_or(ScriptError::Overflow)?),
                    BinOp::Div | BinOp::Rem => {
                        if b == 0 {
                            return Err(ScriptError::DivisionByZero);
                        }
                        let v = if op == BinOp::Div { a.checked_div(b) } else { a.checked_rem(b) };
                        Value::Number(v.ok_or(ScriptError::Overflow)?)
                    }
                    BinOp::Lt => Value::Bool(a < b),
                    BinOp::Gt => Value::Bool(a > b),
                    BinOp::Lte => Value::Bool(a <= b),
                    BinOp::Gte => Value::Bool(a >= b),
                    _ => unreachable!("boolean and equality operators handled above"),
                }
            }
        })
    }

    fn call(&mut self, f: Func, args: &[Expr]) -> Result<Value, ScriptError> {
        Ok(match f {
            Func::SignedBy => {
                let pk = self.key(&args[0])?;
                Value::Bool(self.ctx.signers.contains(&pk))
            }
            Func::MultiSig => {
                let n = self.num(&args[0])?;
                let mut seen = HashSet::new();
                for a in &args[1..] {
                    let pk = self.key(a)?;
                    if self.ctx.signers.contains(&pk) {
                        seen.insert(pk);
                    }
                }
                if n < 0 {
                    return Err(ScriptError::BadArgument("MULTISIG needs n ≥ 0"));
                }
                Value::Bool(seen.len() as i128 >= n)
            }
            Func::CheckSig => {
                let pk = self.key(&args[0])?;
                let data = self.hex(&args[1])?;
                let sig = self.hex(&args[2])?;
                self.tick(self.limits.checksig_cost.saturating_sub(1))?;
                self.stats.sigops = self.stats.sigops.saturating_add(1);
                if self.stats.sigops > self.limits.max_sigops {
                    // Counted as they run: the cap aborts before the verification.
                    return Err(ScriptError::SigopLimit);
                }
                let ok = match Signature::from_bytes(&sig) {
                    None => false,
                    Some(sig) => {
                        let key = crypto::TaggedHasher::new("minima/sigcache")
                            .bytes(&pk.0)
                            .bytes(&crypto::sha3(&data).0)
                            .bytes(&crypto::sha3(sig.as_bytes()).0)
                            .finish();
                        match self.cache.0.get(&key) {
                            Some(r) => *r,
                            None => {
                                let r = crypto::verify_message(&pk, &data, &sig);
                                self.cache.0.insert(key, r);
                                r
                            }
                        }
                    }
                };
                Value::Bool(ok)
            }
            Func::Sha3 => {
                let h = self.hex(&args[0])?;
                // bc of the bytes read and produced (its node's 1 already paid).
                self.tick(byte_cost(h.len() + 32) - 1)?;
                Value::Hex(crypto::sha3(&h).0.to_vec())
            }
            Func::State => {
                let p = self.port(&args[0])?;
                Value::Hex(self.ctx.tx.state_at(p).ok_or(ScriptError::StateMissing(p))?.to_vec())
            }
            Func::PrevState => {
                let p = self.port(&args[0])?;
                let s = self.ctx.coin.state.iter().find(|s| s.port == p);
                Value::Hex(s.ok_or(ScriptError::StateMissing(p))?.data.clone())
            }
            Func::VerifyOut => {
                let i = self.num(&args[0])?;
                let addr = self.hex(&args[1])?;
                let amount = self.num(&args[2])?;
                let token = self.hex(&args[3])?;
                let out = usize::try_from(i).ok().and_then(|i| self.ctx.tx.outputs.get(i));
                Value::Bool(match out {
                    None => false,
                    Some(o) => {
                        o.address.0[..] == addr[..]
                            && o.amount as i128 == amount
                            && o.token_id.0[..] == token[..]
                    }
                })
            }
        })
    }
}

impl Script {
    /// Run the script; `Ok` only when it returns TRUE within its limits.
    pub fn run(
        &self,
        ctx: Context<'_>,
        limits: &Limits,
        cache: &mut SigCache,
    ) -> Result<RunStats, ScriptError> {
        self.run_traced(ctx, limits, cache).0
    }

    /// [`Script::run`], also telling whether the run read `@BLOCK`/`@COINAGE` — on failure
    /// too: a failure that read neither would fail at any height.
    pub fn run_traced(
        &self,
        ctx: Context<'_>,
        limits: &Limits,
        cache: &mut SigCache,
    ) -> (Result<RunStats, ScriptError>, bool) {
        let mut vm = Vm { ctx, limits: *limits, vars: HashMap::new(), stats: RunStats::default(), cache };
        let r = match vm.run_block(&self.prog) {
            Ok(Flow::Return(true)) => Ok(vm.stats),
            Ok(Flow::Return(false)) => Err(ScriptError::ReturnedFalse),
            Ok(Flow::Continue) => Err(ScriptError::NoReturn),
            Err(e) => Err(e),
        };
        (r, vm.stats.reads_height)
    }
}

/// Parse and run `src` in one step.
pub fn run_script(
    src: &str,
    ctx: Context<'_>,
    limits: &Limits,
    cache: &mut SigCache,
) -> Result<RunStats, ScriptError> {
    run_script_traced(src, ctx, limits, cache).0
}

/// [`run_script`], also telling whether the run read the height ([`Script::run_traced`]).
pub fn run_script_traced(
    src: &str,
    ctx: Context<'_>,
    limits: &Limits,
    cache: &mut SigCache,
) -> (Result<RunStats, ScriptError>, bool) {
    match Script::parse(src, limits) {
        Ok(s) => s.run_traced(ctx, limits, cache),
        Err(e) => (Err(e), false),
    }
}
