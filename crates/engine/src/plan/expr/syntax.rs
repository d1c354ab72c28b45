//! The expression grammar: a subset of CEL's, parsed into an [`Ast`] whose nodes keep the character
//! offset where they start inside the YAML scalar, so every compile error can point into it.
//!
//! ```text
//! expr    = or ( "?" expr ":" expr )?
//! or      = and ( "||" and )*
//! and     = rel ( "&&" rel )*
//! rel     = add ( ( "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" ) add )?
//! add     = mul ( ( "+" | "-" ) mul )*
//! mul     = unary ( ( "*" | "/" | "%" ) unary )*
//! unary   = ( "!" | "-" ) unary | postfix
//! postfix = primary ( "." IDENT ( "(" args ")" )? | "[" expr "]" )*
//! primary = literal | IDENT ( "(" args ")" )? | "(" expr ")" | "[" args "]" | path
//! path    = "$" ( "." IDENT | "[" INT "]" | "[" STRING "]" )*
//! ```
//!
//! Why by hand: the grammar is small, and a hand-written recursive-descent parser gives messages in
//! the mapping's own terms ("expected `)` to close the call of `size`") with exact columns.

use std::fmt;

/// A parsed expression: `at` is the character offset of the node inside the expression text.
#[derive(Clone, Debug, PartialEq)]
pub struct Ast {
    /// The character offset of the node in the expression text.
    pub at: usize,
    /// What the node is.
    pub kind: AstKind,
}

/// The kinds of expression node.
#[derive(Clone, Debug, PartialEq)]
pub enum AstKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Double(f64),
    /// A string literal, unescaped.
    Str(String),
    /// `[a, b]`.
    List(Vec<Ast>),
    /// A name: a target, a macro variable.
    Ident(String),
    /// `$.a.b[0]`: a path into the record (or into the array item being mapped).
    Path(Vec<PathStep>, String),
    /// `x.name`.
    Select(Box<Ast>, String),
    /// `x[i]`.
    Index(Box<Ast>, Box<Ast>),
    /// `f(args)` or, with a receiver, `x.f(args)`.
    Call {
        /// The value before the dot, in the method form.
        receiver: Option<Box<Ast>>,
        /// The function's name.
        name: String,
        /// The arguments.
        args: Vec<Ast>,
    },
    /// `!x`, `-x`.
    Unary(UnaryOp, Box<Ast>),
    /// `a op b`.
    Binary(BinaryOp, Box<Ast>, Box<Ast>),
    /// `c ? a : b`.
    Cond(Box<Ast>, Box<Ast>, Box<Ast>),
}

/// One step of a `$` path.
#[derive(Clone, Debug, PartialEq)]
pub enum PathStep {
    /// `.name` or `['name']`.
    Key(String),
    /// `[i]`.
    Index(usize),
}

/// A prefix operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `!`.
    Not,
    /// `-`.
    Neg,
}

/// An infix operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `||`.
    Or,
    /// `&&`.
    And,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `in`.
    In,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }
}

/// A syntax error at a character offset of the expression.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    /// The character offset.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// Unsigned: `-9223372036854775808` is a negated literal one past `i64::MAX`.
    Int(u64),
    Double(f64),
    Str(String),
    Ident(String),
    Dollar,
    Punct(&'static str),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Int(i) => format!("number `{i}`"),
            Tok::Double(d) => format!("number `{d}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Dollar => "`$`".into(),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::End => "the end of the expression".into(),
        }
    }
}

const PUNCTS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%", "(", ")", "[", "]", ".", ",", "?", ":",
];

/// Deepest nesting accepted: a hostile or generated expression cannot exhaust the stack.
const MAX_NESTING: usize = 64;

/// Tallest syntax tree accepted. A flat chain (`a + a + …`, `x || x || …`, `s.trim().trim()…`)
/// nests no parenthesis yet builds a tree as tall as it is long, and the checker, the compiler, the
/// evaluator and the tree's own drop all walk it recursively: the height is bounded where the tree
/// is built, well inside the smallest stack a mapping is compiled or run on.
pub const MAX_HEIGHT: usize = 128;

/// The tokens of an expression with their character offsets. One loop with one arm per kind of
/// token, as lexers are written: the arms share the cursor, so splitting them would pass it around.
fn lex(text: &str) -> Result<Vec<(usize, Tok)>, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() {
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let mut is_double = false;
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                is_double = true;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                is_double = true;
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let literal: String = chars[start..i].iter().collect();
            if i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                return Err(SyntaxError {
                    at: i,
                    message: format!("unexpected `{}` after the number `{literal}`", chars[i]),
                });
            }
            let tok = if is_double {
                match literal.parse::<f64>() {
                    Ok(d) if d.is_finite() => Tok::Double(d),
                    _ => return Err(SyntaxError { at: start, message: format!("number `{literal}` is out of range") }),
                }
            } else {
                match literal.parse::<u64>() {
                    Ok(n) if n <= 1 << 63 => Tok::Int(n),
                    _ => {
                        return Err(SyntaxError {
                            at: start,
                            message: format!("integer `{literal}` does not fit a signed 64-bit integer"),
                        });
                    }
                }
            };
            out.push((start, tok));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((start, Tok::Ident(chars[start..i].iter().collect())));
            continue;
        }
        if c == '"' || c == '\'' {
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&ch) = chars.get(i) else {
                    return Err(SyntaxError { at: start, message: "string is not closed".into() });
                };
                i += 1;
                if ch == c {
                    break;
                }
                if ch == '\\' {
                    let Some(&esc) = chars.get(i) else {
                        return Err(SyntaxError { at: start, message: "string is not closed".into() });
                    };
                    i += 1;
                    s.push(match esc {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '\\' => '\\',
                        '"' => '"',
                        '\'' => '\'',
                        other => {
                            return Err(SyntaxError {
                                at: i - 2,
                                message: format!(
                                    "unknown escape `\\{other}` in a string (known: \\n \\t \\r \\\\ \\\" \\')"
                                ),
                            });
                        }
                    });
                } else {
                    s.push(ch);
                }
            }
            out.push((start, Tok::Str(s)));
            continue;
        }
        if c == '$' {
            out.push((start, Tok::Dollar));
            i += 1;
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
            Some(p) => {
                out.push((start, Tok::Punct(p)));
                i += p.chars().count();
            }
            None => {
                let hint = match c {
                    '=' => " (compare with `==`)",
                    '&' => " (write `&&` for and)",
                    '|' => " (write `||` for or)",
                    _ => "",
                };
                return Err(SyntaxError { at: start, message: format!("unexpected character `{c}`{hint}") });
            }
        }
    }
    out.push((chars.len(), Tok::End));
    Ok(out)
}

/// Parses an expression.
pub fn parse(text: &str) -> Result<Ast, SyntaxError> {
    let tokens = lex(text)?;
    let mut parser = Parser { tokens, next: 0, depth: 0, height: 0 };
    let ast = parser.expr()?;
    match parser.peek() {
        Tok::End => Ok(ast),
        other => Err(SyntaxError {
            at: parser.at(),
            message: format!("unexpected {} after a complete expression", other.describe()),
        }),
    }
}

struct Parser {
    tokens: Vec<(usize, Tok)>,
    next: usize,
    depth: usize,
    /// The height of the tree the last parsing method returned (a leaf is 1).
    height: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.next].1
    }

    fn at(&self) -> usize {
        self.tokens[self.next].0
    }

    fn bump(&mut self) -> (usize, Tok) {
        let t = self.tokens[self.next].clone();
        if self.next + 1 < self.tokens.len() {
            self.next += 1;
        }
        t
    }

    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Tok::Punct(q) if *q == p) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str, context: &str) -> Result<(), SyntaxError> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(SyntaxError {
                at: self.at(),
                message: format!("expected `{p}` {context}, found {}", self.peek().describe()),
            })
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(SyntaxError {
                at: self.at(),
                message: format!("expression nests deeper than {MAX_NESTING} levels"),
            });
        }
        Ok(())
    }

    /// Records `height` as the height of the node just built, refusing a tree taller than
    /// [`MAX_HEIGHT`] at `at` (where the chain that grew it starts).
    fn grown(&mut self, height: usize, at: usize) -> Result<(), SyntaxError> {
        if height > MAX_HEIGHT {
            return Err(SyntaxError {
                at,
                message: format!(
                    "expression is too deep: more than {MAX_HEIGHT} operators, calls or steps chained one inside another \
                     (split it into computed fields)"
                ),
            });
        }
        self.height = height;
        Ok(())
    }

    fn expr(&mut self) -> Result<Ast, SyntaxError> {
        self.enter()?;
        let cond = self.or()?;
        let result = if self.eat("?") {
            let mut height = self.height;
            let yes = self.expr()?;
            height = height.max(self.height);
            self.expect(":", "between the two branches of `? :`")?;
            let no = self.expr()?;
            height = height.max(self.height);
            self.grown(height + 1, cond.at)?;
            Ast { at: cond.at, kind: AstKind::Cond(Box::new(cond), Box::new(yes), Box::new(no)) }
        } else {
            cond
        };
        self.depth -= 1;
        Ok(result)
    }

    fn or(&mut self) -> Result<Ast, SyntaxError> {
        let mut left = self.and()?;
        while self.eat("||") {
            let height = self.height;
            let right = self.and()?;
            self.grown(height.max(self.height) + 1, left.at)?;
            left = Ast { at: left.at, kind: AstKind::Binary(BinaryOp::Or, Box::new(left), Box::new(right)) };
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Ast, SyntaxError> {
        let mut left = self.rel()?;
        while self.eat("&&") {
            let height = self.height;
            let right = self.rel()?;
            self.grown(height.max(self.height) + 1, left.at)?;
            left = Ast { at: left.at, kind: AstKind::Binary(BinaryOp::And, Box::new(left), Box::new(right)) };
        }
        Ok(left)
    }

    fn rel(&mut self) -> Result<Ast, SyntaxError> {
        let left = self.add()?;
        let op = match self.peek() {
            Tok::Punct("==") => BinaryOp::Eq,
            Tok::Punct("!=") => BinaryOp::Ne,
            Tok::Punct("<") => BinaryOp::Lt,
            Tok::Punct("<=") => BinaryOp::Le,
            Tok::Punct(">") => BinaryOp::Gt,
            Tok::Punct(">=") => BinaryOp::Ge,
            Tok::Ident(s) if s == "in" => BinaryOp::In,
            _ => return Ok(left),
        };
        self.bump();
        let height = self.height;
        let right = self.add()?;
        self.grown(height.max(self.height) + 1, left.at)?;
        if let Tok::Punct(p @ ("==" | "!=" | "<" | "<=" | ">" | ">=")) = self.peek() {
            return Err(SyntaxError {
                at: self.at(),
                message: format!("comparisons do not chain: write `a {} b && b {p} c`", op.symbol()),
            });
        }
        Ok(Ast { at: left.at, kind: AstKind::Binary(op, Box::new(left), Box::new(right)) })
    }

    fn add(&mut self) -> Result<Ast, SyntaxError> {
        let mut left = self.mul()?;
        loop {
            let op = match self.peek() {
                Tok::Punct("+") => BinaryOp::Add,
                Tok::Punct("-") => BinaryOp::Sub,
                _ => return Ok(left),
            };
            self.bump();
            let height = self.height;
            let right = self.mul()?;
            self.grown(height.max(self.height) + 1, left.at)?;
            left = Ast { at: left.at, kind: AstKind::Binary(op, Box::new(left), Box::new(right)) };
        }
    }

    fn mul(&mut self) -> Result<Ast, SyntaxError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Punct("*") => BinaryOp::Mul,
                Tok::Punct("/") => BinaryOp::Div,
                Tok::Punct("%") => BinaryOp::Rem,
                _ => return Ok(left),
            };
            self.bump();
            let height = self.height;
            let right = self.unary()?;
            self.grown(height.max(self.height) + 1, left.at)?;
            left = Ast { at: left.at, kind: AstKind::Binary(op, Box::new(left), Box::new(right)) };
        }
    }

    fn unary(&mut self) -> Result<Ast, SyntaxError> {
        let at = self.at();
        let op = match self.peek() {
            Tok::Punct("!") => UnaryOp::Not,
            Tok::Punct("-") => UnaryOp::Neg,
            _ => return self.postfix(),
        };
        self.bump();
        if op == UnaryOp::Neg && *self.peek() == Tok::Int(1 << 63) {
            self.bump();
            self.height = 1;
            return Ok(Ast { at, kind: AstKind::Int(i64::MIN) });
        }
        self.enter()?;
        let operand = self.unary()?;
        self.depth -= 1;
        // `-5` is a literal, so `-9223372036854775808` fits.
        if op == UnaryOp::Neg {
            match operand.kind {
                // `--9223372036854775808` has no literal: it stays a negation, an overflow when run.
                AstKind::Int(n) if n != i64::MIN => return Ok(Ast { at, kind: AstKind::Int(-n) }),
                AstKind::Double(d) => return Ok(Ast { at, kind: AstKind::Double(-d) }),
                _ => {}
            }
        }
        self.grown(self.height + 1, at)?;
        Ok(Ast { at, kind: AstKind::Unary(op, Box::new(operand)) })
    }

    fn postfix(&mut self) -> Result<Ast, SyntaxError> {
        let mut node = self.primary()?;
        loop {
            if self.eat(".") {
                let at = self.at();
                let name = match self.bump().1 {
                    Tok::Ident(name) => name,
                    other => {
                        return Err(SyntaxError {
                            at,
                            message: format!("expected a name after `.`, found {}", other.describe()),
                        });
                    }
                };
                let height = self.height;
                if self.eat("(") {
                    let args = self.args(")", &format!("to close the call of `{name}`"))?;
                    self.grown(height.max(self.height) + 1, node.at)?;
                    node = Ast { at: node.at, kind: AstKind::Call { receiver: Some(Box::new(node)), name, args } };
                } else {
                    self.grown(height + 1, node.at)?;
                    node = Ast { at: node.at, kind: AstKind::Select(Box::new(node), name) };
                }
            } else if self.eat("[") {
                let height = self.height;
                let index = self.expr()?;
                self.expect("]", "to close the index")?;
                self.grown(height.max(self.height) + 1, node.at)?;
                node = Ast { at: node.at, kind: AstKind::Index(Box::new(node), Box::new(index)) };
            } else {
                return Ok(node);
            }
        }
    }

    /// Parses arguments or list items; leaves the tallest one's height in `self.height` (0 for none).
    fn args(&mut self, close: &str, context: &str) -> Result<Vec<Ast>, SyntaxError> {
        let mut args = Vec::new();
        let mut height = 0;
        if self.eat(close) {
            self.height = height;
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            height = height.max(self.height);
            if self.eat(close) {
                self.height = height;
                return Ok(args);
            }
            if !self.eat(",") {
                return Err(SyntaxError {
                    at: self.at(),
                    message: format!("expected `,` or `{close}` {context}, found {}", self.peek().describe()),
                });
            }
        }
    }

    fn primary(&mut self) -> Result<Ast, SyntaxError> {
        let (at, tok) = self.bump();
        let kind = match tok {
            Tok::Int(n) => match i64::try_from(n) {
                Ok(n) => AstKind::Int(n),
                Err(_) => {
                    return Err(SyntaxError {
                        at,
                        message: format!("integer `{n}` does not fit a signed 64-bit integer"),
                    });
                }
            },
            Tok::Double(d) => AstKind::Double(d),
            Tok::Str(s) => AstKind::Str(s),
            Tok::Ident(name) => match name.as_str() {
                "true" => AstKind::Bool(true),
                "false" => AstKind::Bool(false),
                "null" => AstKind::Null,
                _ if self.eat("(") => {
                    let args = self.args(")", &format!("to close the call of `{name}`"))?;
                    self.grown(self.height + 1, at)?;
                    return Ok(Ast { at, kind: AstKind::Call { receiver: None, name, args } });
                }
                _ => AstKind::Ident(name),
            },
            Tok::Punct("(") => {
                let inner = self.expr()?;
                self.expect(")", "to close `(`")?;
                return Ok(inner);
            }
            Tok::Punct("[") => {
                let items = self.args("]", "to close the list")?;
                self.grown(self.height + 1, at)?;
                return Ok(Ast { at, kind: AstKind::List(items) });
            }
            Tok::Dollar => {
                self.height = 1;
                return self.path(at);
            }
            other => {
                return Err(SyntaxError {
                    at,
                    message: format!("expected a value, a field name or `(`, found {}", other.describe()),
                });
            }
        };
        self.height = 1;
        Ok(Ast { at, kind })
    }

    /// `$` then `.name`, `[index]` or `['key']` steps; the text is kept for messages.
    fn path(&mut self, at: usize) -> Result<Ast, SyntaxError> {
        let mut steps = Vec::new();
        let mut text = String::from("$");
        loop {
            // `.` followed by a name continues the path; `.size()` after a path is a call.
            if matches!(self.peek(), Tok::Punct("."))
                && matches!(self.tokens.get(self.next + 1), Some((_, Tok::Ident(_))))
                && !matches!(self.tokens.get(self.next + 2), Some((_, Tok::Punct("("))))
            {
                self.bump();
                let Tok::Ident(name) = self.bump().1 else { unreachable!("checked above") };
                text.push('.');
                text.push_str(&name);
                steps.push(PathStep::Key(name));
            } else if matches!(self.peek(), Tok::Punct("[")) {
                let open = self.at();
                self.bump();
                match self.bump().1 {
                    Tok::Int(n) if n <= i64::MAX as u64 => {
                        text.push_str(&format!("[{n}]"));
                        steps.push(PathStep::Index(n as usize));
                    }
                    Tok::Str(key) => {
                        text.push_str(&format!("['{key}']"));
                        steps.push(PathStep::Key(key));
                    }
                    other => {
                        return Err(SyntaxError {
                            at: open,
                            message: format!(
                                "a path in an expression takes `.name`, `[N]` or `['key']` steps, found {} \
                                 (wildcards and filters belong in a field's `source`)",
                                other.describe()
                            ),
                        });
                    }
                }
                self.expect("]", "to close the path step")?;
            } else {
                return Ok(Ast { at, kind: AstKind::Path(steps, text) });
            }
        }
    }
}

/// How many characters the token at character `at` of `text` has — a name, a number, a string,
/// a `$` path, an operator — so a problem found there can underline it. At least one, unless `at`
/// is the end of the text.
pub fn token_len(text: &str, at: usize) -> usize {
    let rest: Vec<char> = text.chars().skip(at).collect();
    let Some(&first) = rest.first() else { return 0 };
    let word = |c: &char| c.is_alphanumeric() || *c == '_';
    let len = match first {
        c if word(&c) => {
            let mut n = rest.iter().take_while(|c| word(c)).count();
            // A fraction or an exponent's sign continues a number.
            let continues = |n: usize| match rest.get(n) {
                Some('.') => true,
                Some('+' | '-') => matches!(rest[n - 1], 'e' | 'E'),
                _ => false,
            };
            while c.is_ascii_digit() && continues(n) && rest.get(n + 1).is_some_and(word) {
                n += 1 + rest[n + 1..].iter().take_while(|c| word(c)).count();
            }
            n
        }
        '"' | '\'' => {
            let mut escaped = false;
            let close = rest.iter().skip(1).position(|&c| {
                let closes = c == first && !escaped;
                escaped = c == '\\' && !escaped;
                closes
            });
            close.map_or(rest.len(), |k| k + 2)
        }
        '$' => {
            let mut n = 1;
            let mut depth = 0usize;
            while let Some(&c) = rest.get(n) {
                match c {
                    '[' => depth += 1,
                    ']' if depth > 0 => depth -= 1,
                    c if depth > 0 || word(&c) || c == '.' => {}
                    _ => break,
                }
                n += 1;
            }
            n
        }
        _ => {
            let two: String = rest.iter().take(2).collect();
            PUNCTS.iter().find(|p| two.starts_with(**p)).map_or(1, |p| p.chars().count())
        }
    };
    len.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> String {
        fn show(a: &Ast) -> String {
            match &a.kind {
                AstKind::Null => "null".into(),
                AstKind::Bool(b) => b.to_string(),
                AstKind::Int(n) => n.to_string(),
                AstKind::Double(d) => format!("{d:?}"),
                AstKind::Str(s) => format!("{s:?}"),
                AstKind::List(items) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(", ")),
                AstKind::Ident(n) => n.clone(),
                AstKind::Path(_, text) => text.clone(),
                AstKind::Select(x, n) => format!("{}.{n}", show(x)),
                AstKind::Index(x, i) => format!("{}[{}]", show(x), show(i)),
                AstKind::Call { receiver, name, args } => {
                    let args = args.iter().map(show).collect::<Vec<_>>().join(", ");
                    match receiver {
                        Some(r) => format!("{}.{name}({args})", show(r)),
                        None => format!("{name}({args})"),
                    }
                }
                AstKind::Unary(UnaryOp::Not, x) => format!("!{}", show(x)),
                AstKind::Unary(UnaryOp::Neg, x) => format!("-{}", show(x)),
                AstKind::Binary(op, l, r) => format!("({} {} {})", show(l), op.symbol(), show(r)),
                AstKind::Cond(c, y, n) => format!("({} ? {} : {})", show(c), show(y), show(n)),
            }
        }
        show(&parse(text).unwrap())
    }

    /// The height bound holds for every shape a tree grows by, and counts what it should: a
    /// chain exactly `MAX_HEIGHT` tall parses, one more does not, and the error points where the
    /// chain starts.
    #[test]
    fn trees_taller_than_the_bound_are_refused_whatever_grows_them() {
        // Each shape: a leaf `a`, then a unit repeated, each repetition one level taller.
        let shapes = [("sum", " + a"), ("product", " * a"), ("or", " || a"), ("and", " && a"), ("selects", ".b")];
        let shapes = shapes.into_iter().chain([("calls", ".trim()")]);
        for (what, unit) in shapes {
            let shape = |n: usize| format!("a{}", unit.repeat(n - 1));
            assert!(parse(&shape(MAX_HEIGHT)).is_ok(), "{what} of height {MAX_HEIGHT}");
            let err = parse(&shape(MAX_HEIGHT + 1)).unwrap_err();
            assert!(err.message.contains("too deep"), "{what}: {err:?}");
            assert_eq!(err.at, 0, "{what}");
            assert!(parse(&shape(50_000)).is_err(), "{what} of 50,000");
        }
        // Heights add up across shapes: a sum whose first term is a chain of calls.
        let half = format!("a{}", ".trim()".repeat(MAX_HEIGHT / 2));
        assert!(parse(&format!("{half}{}", " + a".repeat(MAX_HEIGHT / 2 - 1))).is_ok());
        assert!(parse(&format!("{half}{}", " + a".repeat(MAX_HEIGHT / 2))).is_err());
        // And through arguments and list items.
        let inside = format!("a{}", ".trim()".repeat(MAX_HEIGHT - 3));
        assert!(parse(&format!("size([{inside}])")).is_ok());
        assert!(parse(&format!("size([{inside}.trim()])")).is_err());
    }

    #[test]
    fn precedence_follows_cel() {
        assert_eq!(shape("a + b * c"), "(a + (b * c))");
        assert_eq!(shape("a - b - c"), "((a - b) - c)");
        assert_eq!(shape("a || b && c"), "(a || (b && c))");
        assert_eq!(shape("!a && b == 1"), "(!a && (b == 1))");
        assert_eq!(shape("x in ['A', 'B'] ? 1 : 2"), "((x in [\"A\", \"B\"]) ? 1 : 2)");
        assert_eq!(shape("-5 + -x"), "(-5 + -x)");
        assert_eq!(shape("items.map(i, i.q * 2).sum()"), "items.map(i, (i.q * 2)).sum()");
        assert_eq!(shape("payer.document_type == \"CPF\""), "(payer.document_type == \"CPF\")");
        assert_eq!(shape("$.event_type == 'x' && $['odd key'][0].a"), "(($.event_type == \"x\") && $['odd key'][0].a)");
    }

    #[test]
    fn paths_and_calls_after_them() {
        assert_eq!(shape("$.a.b[2]['c d']"), "$.a.b[2]['c d']");
        assert_eq!(shape("$.tags.size()"), "$.tags.size()");
        assert_eq!(shape("-9223372036854775808"), "-9223372036854775808");
        // Its negation has no literal: it stays a negation (an overflow error when it runs).
        assert_eq!(shape("--9223372036854775808"), "--9223372036854775808");
        assert_eq!(shape("--5"), "5");
    }

    #[test]
    fn errors_point_at_the_offending_character() {
        let e = parse("a = 1").unwrap_err();
        assert_eq!((e.at, e.message.contains("compare with `==`")), (2, true), "{e:?}");
        let e = parse("size(a").unwrap_err();
        assert_eq!(e.at, 6);
        assert!(e.message.contains("to close the call of `size`"), "{}", e.message);
        let e = parse("a < b < c").unwrap_err();
        assert!(e.message.contains("do not chain"), "{}", e.message);
        let e = parse("'open").unwrap_err();
        assert_eq!((e.at, e.message.as_str()), (0, "string is not closed"));
        let e = parse("$.items[*].sku").unwrap_err();
        assert!(e.message.contains("belong in a field's `source`"), "{}", e.message);
        let e = parse("a b").unwrap_err();
        assert_eq!(e.at, 2);
        let e = parse(&"(".repeat(100)).unwrap_err();
        assert!(e.message.contains("nests deeper"), "{}", e.message);
    }
}

#[cfg(test)]
mod token_tests {
    use super::token_len;

    /// The token at the first `needle` of `text`.
    fn token<'t>(text: &'t str, needle: &str) -> &'t str {
        let at = text[..text.find(needle).unwrap()].chars().count();
        let len = token_len(text, at);
        let start = text.char_indices().nth(at).unwrap().0;
        let end = text.char_indices().nth(at + len).map_or(text.len(), |(i, _)| i);
        &text[start..end]
    }

    #[test]
    fn the_token_at_an_offset_is_a_whole_name_number_string_path_or_operator() {
        let text = r#"sizee(items) + 1.5e-3 - 2 == "a \" b" && $.a.b[0].c != é_1 || x"#;
        assert_eq!(token(text, "sizee"), "sizee");
        assert_eq!(token(text, "1.5"), "1.5e-3");
        assert_eq!(token(text, "2 =="), "2");
        assert_eq!(token(text, "=="), "==");
        assert_eq!(token(text, "\"a"), r#""a \" b""#);
        assert_eq!(token(text, "$"), "$.a.b[0].c");
        assert_eq!(token(text, "é"), "é_1");
        assert_eq!(token(text, "("), "(");
        assert_eq!(token_len(text, text.chars().count()), 0);
        assert_eq!(token("'open", "'"), "'open");
    }
}
