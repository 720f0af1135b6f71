//! The grammar of `sequential!`:
//!
//! ```text
//! input    := item+ | chain ';'?
//! item     := attribute* visibility 'struct' Ident '=' chain ';'
//! chain    := call ('=>' call)*
//! call     := Ident '(' (arg (',' arg)* ','?)? ')'
//! arg      := (Ident | 'in') '=' value | value
//! value    := call | Expr        (a call is kept as one too: `TimeDistributed(Dense(8, in = 4))`)
//! ```
//!
//! and of `functional!`:
//!
//! ```text
//! item   := attribute* visibility 'struct' Ident '(' (Ident ':' shape),+ ')' '->' output '{' stmt* '}'
//! output := Ident | '(' Ident,+ ')'
//! stmt   := 'let' Ident '=' call ('(' Ident,* ')')? ';'
//! ```

use proc_macro2::{Group, TokenStream};
use quote::ToTokens;
use syn::parse::discouraged::Speculative;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Ident, Token, Visibility};

/// What the macro was given.
pub enum Input {
    /// `pub struct Mlp = ...;` items.
    Items(Vec<Item>),
    /// `Input(4) => Dense(3)`: an expression that builds a model on the CPU.
    Expr(Chain),
}

/// One `struct Name = chain;` item.
pub struct Item {
    /// Attributes other than `#[params(..)]`, passed through.
    pub attrs: Vec<Attribute>,
    /// `#[params(N)]`: the expected total parameter count, with the attribute's span.
    pub params: Option<(u128, Attribute)>,
    /// Malformed `#[params]` attributes.
    pub bad_params: Vec<syn::Error>,
    pub vis: Visibility,
    pub name: Ident,
    pub chain: Chain,
}

/// Layers joined by `=>`.
pub struct Chain {
    pub calls: Vec<Call>,
}

/// `Dense(32, relu, in = 784)`. Its tokens span the whole call, for errors about the layer.
pub struct Call {
    /// The class, or the last segment of a path (`self::Sampling`).
    pub kind: Ident,
    /// The path a layer of the user's is written with (`self::Sampling(..)`), if any.
    pub path: Option<syn::Path>,
    pub args: Vec<Arg>,
    group: Group,
}

/// One argument: positional (`key` is None) or keyword. Its tokens span `key = value`.
pub struct Arg {
    pub key: Option<(Ident, Token![=])>,
    /// The value as an expression; a layer call that is no Rust expression (`Dense(8, in = 4)`)
    /// is kept verbatim, so that messages about the value still quote it.
    pub value: Expr,
    /// The value read as a layer call, when it has that form: the layer a wrapper such as
    /// `TimeDistributed(Dense(8))` wraps.
    pub layer: Option<Box<Call>>,
}

impl Arg {
    /// The keyword, if any.
    pub fn key(&self) -> Option<&Ident> {
        self.key.as_ref().map(|(k, _)| k)
    }
}

impl ToTokens for Call {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match &self.path {
            Some(path) => path.to_tokens(tokens),
            None => self.kind.to_tokens(tokens),
        }
        self.group.to_tokens(tokens);
    }
}

impl ToTokens for Arg {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        if let Some((k, eq)) = &self.key {
            k.to_tokens(tokens);
            eq.to_tokens(tokens);
        }
        self.value.to_tokens(tokens);
    }
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let fork = input.fork();
        let _ = fork.call(Attribute::parse_outer);
        let _: Visibility = fork.parse()?;
        if fork.peek(Token![struct]) {
            let mut items = Vec::new();
            while !input.is_empty() {
                items.push(input.parse()?);
            }
            Ok(Input::Items(items))
        } else {
            let chain: Chain = input.parse()?;
            if input.peek(Token![;]) {
                input.parse::<Token![;]>()?;
            }
            if !input.is_empty() {
                return Err(input.error("expected `=>` and another layer, or the end of the model"));
            }
            Ok(Input::Expr(chain))
        }
    }
}

impl Parse for Item {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (attrs, params, bad_params) = parse_attrs(input)?;
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse()?;
        if input.peek(Token![<]) {
            return Err(
                input.error("a model struct takes no generic parameters: it is generic over its backend already (`Mlp<B: Backend = Cpu>`)")
            );
        }
        input.parse::<Token![=]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected `=` after `struct {name}`, then the layers: `struct {name} = Dense(32, in = 784) => ...;`"),
            )
        })?;
        let chain: Chain = input.parse()?;
        input.parse::<Token![;]>().map_err(|e| syn::Error::new(e.span(), "expected `=>` and another layer, or `;` to end the model"))?;
        Ok(Item { attrs, params, bad_params, vis, name, chain })
    }
}

/// A model's attributes: `#[params(N)]` (the expected total parameter count, or an error for a
/// malformed one) split from the others, which are passed through.
#[allow(clippy::type_complexity)]
pub fn parse_attrs(input: ParseStream) -> syn::Result<(Vec<Attribute>, Option<(u128, Attribute)>, Vec<syn::Error>)> {
    let all_attrs = input.call(Attribute::parse_outer)?;
    let mut attrs = Vec::new();
    let mut params = None;
    let mut bad_params = Vec::new();
    for a in all_attrs {
        if a.path().is_ident("params") {
            match a.parse_args::<syn::LitInt>().and_then(|l| l.base10_parse::<u128>()) {
                Ok(v) => params = Some((v, a)),
                Err(_) => bad_params
                    .push(syn::Error::new_spanned(&a, "expected `#[params(N)]` with N the model's total parameter count, an integer")),
            }
        } else {
            attrs.push(a);
        }
    }
    Ok((attrs, params, bad_params))
}

impl Parse for Chain {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut calls = vec![input.parse::<Call>()?];
        while input.peek(Token![=>]) {
            input.parse::<Token![=>]>()?;
            calls.push(input.parse()?);
        }
        Ok(Chain { calls })
    }
}

impl Parse for Call {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // A path (`self::Sampling(..)`, `layers::Affine(..)`) names a layer of the user's.
        let path = if input.peek(Token![::])
            || input.peek2(Token![::])
            || input.peek(Token![self])
            || input.peek(Token![crate])
            || input.peek(Token![super])
        {
            Some(syn::Path::parse_mod_style(input)?)
        } else {
            None
        };
        let kind: Ident = match &path {
            Some(p) => p.segments.last().expect("a path has a segment").ident.clone(),
            None => input.parse().map_err(|e| syn::Error::new(e.span(), "expected a layer, such as `Dense(32, relu)`"))?,
        };
        if !input.peek(syn::token::Paren) {
            return Err(syn::Error::new(
                kind.span(),
                format!("expected `(` after `{kind}`: a layer is written with its arguments in parentheses, `{kind}(..)`"),
            ));
        }
        let group: Group = input.parse()?;
        let args = (|content: ParseStream| {
            let mut args = Vec::new();
            while !content.is_empty() {
                args.push(content.parse::<Arg>()?);
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![,]>()?;
            }
            Ok(args)
        })
        .parse2(group.stream())?;
        Ok(Call { kind, path, args, group })
    }
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let is_key =
            (input.peek(Ident) || input.peek(Token![in])) && input.peek2(Token![=]) && !input.peek2(Token![==]) && !input.peek2(Token![=>]);
        if is_key {
            let key = if input.peek(Token![in]) {
                let t: Token![in] = input.parse()?;
                Ident::new("in", t.span)
            } else {
                input.parse::<Ident>()?
            };
            let eq: Token![=] = input.parse()?;
            let (value, layer) = parse_value(input)?;
            Ok(Arg { key: Some((key, eq)), value, layer })
        } else {
            let (value, layer) = parse_value(input)?;
            Ok(Arg { key: None, value, layer })
        }
    }
}

/// An argument's value: an expression, and also a [`Call`] when the whole value is one
/// (`Dense(8, relu)`, `l2(0.01)`); a call whose arguments are no Rust expression
/// (`Dense(8, in = 4)`) is kept as verbatim tokens.
fn parse_value(input: ParseStream) -> syn::Result<(Expr, Option<Box<Call>>)> {
    if input.peek(Ident) && input.peek2(syn::token::Paren) {
        let call_fork = input.fork();
        if let Ok(call) = call_fork.parse::<Call>()
            && (call_fork.is_empty() || call_fork.peek(Token![,]))
        {
            let expr_fork = input.fork();
            let value = match expr_fork.parse::<Expr>() {
                Ok(e) if expr_fork.cursor() == call_fork.cursor() => e,
                _ => Expr::Verbatim(call.to_token_stream()),
            };
            input.advance_to(&call_fork);
            return Ok((value, Some(Box::new(call))));
        }
    }
    Ok((input.parse()?, None))
}

/// Parses the macro input.
pub fn parse(tokens: TokenStream) -> syn::Result<Input> {
    syn::parse2(tokens)
}

/// One `struct Name(inputs) -> output { .. }` item.
pub struct FItem {
    pub attrs: Vec<Attribute>,
    pub params: Option<(u128, Attribute)>,
    pub bad_params: Vec<syn::Error>,
    pub vis: Visibility,
    pub name: Ident,
    pub inputs: Vec<(Ident, Expr)>,
    pub outputs: Vec<Ident>,
    pub arrow: Token![->],
    pub stmts: Vec<Stmt>,
}

/// `let var = call;` or `let var = call(tensors);`.
pub struct Stmt {
    pub var: Ident,
    pub call: Call,
    /// The tensors a freshly made layer is called on: `Dense(8)(x)`.
    pub apply: Option<(Group, Vec<Expr>)>,
}

pub struct Items(pub Vec<FItem>);

impl Parse for Items {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut items = Vec::new();
        while !input.is_empty() {
            items.push(input.parse()?);
        }
        Ok(Items(items))
    }
}

impl Parse for FItem {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (attrs, params, bad_params) = parse_attrs(input)?;
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse()?;
        if !input.peek(syn::token::Paren) {
            return Err(input.error(format!(
                "expected the model's inputs in parentheses after `struct {name}`, as in `struct {name}(x: [784]) -> y {{ .. }}`"
            )));
        }
        let group: Group = input.parse()?;
        let inputs = (|content: ParseStream| {
            let mut inputs = Vec::new();
            while !content.is_empty() {
                let ident: Ident = content.parse()?;
                content.parse::<Token![:]>().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        format!("expected `:` and the per-sample shape after input `{ident}`, as in `{ident}: [784]`"),
                    )
                })?;
                let shape: Expr = content.parse()?;
                inputs.push((ident, shape));
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![,]>()?;
            }
            Ok(inputs)
        })
        .parse2(group.stream())?;
        if inputs.is_empty() {
            return Err(syn::Error::new(group.span(), "a model needs at least one input, as in `(x: [784])`"));
        }
        let arrow: Token![->] = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), format!("expected `->` and the model's output after the inputs of `{name}`")))?;
        let outputs = if input.peek(syn::token::Paren) {
            let group: Group = input.parse()?;
            let list = Punctuated::<Ident, Token![,]>::parse_terminated.parse2(group.stream())?;
            list.into_iter().collect()
        } else {
            vec![input.parse::<Ident>()?]
        };
        let body;
        syn::braced!(body in input);
        let mut stmts = Vec::new();
        while !body.is_empty() {
            stmts.push(body.parse()?);
        }
        Ok(FItem { attrs, params, bad_params, vis, name, inputs, outputs, arrow, stmts })
    }
}

impl Parse for Stmt {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        input
            .parse::<Token![let]>()
            .map_err(|e| syn::Error::new(e.span(), "expected `let name = Layer(..)(inputs);` or `let name = layer(inputs);`"))?;
        let var: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let call: Call = input.parse()?;
        let apply = if input.peek(syn::token::Paren) {
            let group: Group = input.parse()?;
            let list = Punctuated::<Expr, Token![,]>::parse_terminated.parse2(group.stream())?;
            Some((group, list.into_iter().collect()))
        } else {
            None
        };
        input.parse::<Token![;]>().map_err(|e| syn::Error::new(e.span(), "expected `;` after the layer call"))?;
        Ok(Stmt { var, call, apply })
    }
}
