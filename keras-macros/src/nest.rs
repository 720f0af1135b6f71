//! Models used as layers (`use Encoder;` at the top of a `sequential!` or `functional!`).
//!
//! A proc macro sees only its own tokens, so a model made by another invocation is brought in
//! through a callback: every model struct comes with a hidden `macro_rules!`
//! (`__keras_model_Encoder`, re-exported within the crate beside the struct) that holds the
//! tokens it was declared with. A macro whose `use` names a model it has not seen yet expands
//! to a call of that model's callback, which calls the macro again with the model's tokens in
//! front, as `@model Encoder = sequential { .. }`. Once every `use` is resolved, the model's
//! own graph is lowered again from those tokens and inlined into the new one (see
//! `Checker::apply`), so its shapes, names and parameter counts are checked at compile time
//! where it is used.

use crate::diag::Diag;
use crate::graph::Graph;
use crate::parse::{Items, parse};
use proc_macro2::{Delimiter, Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote};

/// A model brought in by `use`, its tokens known.
#[derive(Clone)]
pub struct Resolved {
    /// The struct's name.
    pub name: Ident,
    /// `sequential` or `functional`: the macro that declared it.
    pub kind: Ident,
    /// What it was declared with: its own preamble and its item.
    pub body: TokenStream,
}

/// The leading `@model ..` entries and `use ..;` lines of a macro's input.
#[derive(Default)]
pub struct Preamble {
    pub resolved: Vec<Resolved>,
    pub uses: Vec<syn::Path>,
    /// Their tokens, as given.
    pub raw: TokenStream,
}

impl Preamble {
    /// The models a body may call: those `use`d, with their tokens.
    pub fn models(&self) -> Vec<Resolved> {
        self.uses.iter().filter_map(|u| self.resolved.iter().find(|r| r.name == *last(u)).cloned()).collect()
    }
}

fn last(path: &syn::Path) -> &Ident {
    &path.segments.last().expect("a path has a segment").ident
}

/// Splits the preamble off `tokens`: `@model Name = kind { .. }` entries (written by the
/// callbacks) and `use path;` lines, in any order, before the first model.
pub fn preamble(tokens: TokenStream) -> syn::Result<(Preamble, TokenStream)> {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut p = Preamble::default();
    let mut i = 0;
    loop {
        match trees.get(i) {
            Some(TokenTree::Punct(at)) if at.as_char() == '@' => match &trees[i + 1..trees.len().min(i + 6)] {
                [TokenTree::Ident(m), TokenTree::Ident(name), TokenTree::Punct(eq), TokenTree::Ident(kind), TokenTree::Group(g)]
                    if m == "model" && eq.as_char() == '=' && g.delimiter() == Delimiter::Brace =>
                {
                    p.resolved.push(Resolved { name: name.clone(), kind: kind.clone(), body: g.stream() });
                    p.raw.extend(trees[i..i + 6].iter().cloned());
                    i += 6;
                }
                _ => return Err(syn::Error::new(at.span(), "unexpected `@`: a model starts with its attributes, `pub` or `struct`")),
            },
            Some(TokenTree::Ident(u)) if u == "use" => {
                let Some(end) = trees[i..].iter().position(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ';')) else {
                    return Err(syn::Error::new(
                        u.span(),
                        "expected `use Model;`: the name (or path) of a model made by `sequential!` or `functional!`, and `;`",
                    ));
                };
                let path_tokens: TokenStream = trees[i + 1..i + end].iter().cloned().collect();
                let path = syn::parse::Parser::parse2(syn::Path::parse_mod_style, path_tokens).map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected `use Model;`: the name (or path) of a model made by `sequential!` or `functional!` (one per `use`)",
                    )
                })?;
                p.uses.push(path);
                p.raw.extend(trees[i..=i + end].iter().cloned());
                i += end + 1;
            }
            _ => break,
        }
    }
    Ok((p, trees[i..].iter().cloned().collect()))
}

/// When a `use` names a model whose tokens have not come yet: the call of its callback that
/// brings them (`mac` is the macro to call again with them, `all` its whole input).
pub fn callback(mac: &str, p: &Preamble, all: &TokenStream) -> Option<TokenStream> {
    let missing = p.uses.iter().find(|u| !p.resolved.iter().any(|r| r.name == *last(u)))?;
    let mut path = missing.clone();
    let seg = path.segments.last_mut().expect("a path has a segment");
    seg.ident = format_ident!("__keras_model_{}", seg.ident, span = seg.ident.span());
    let mac = Ident::new(mac, Span::call_site());
    Some(quote!(#path! { #mac { #all } }))
}

/// The tokens of each model item of a macro's input (after the preamble): a `sequential!`
/// item ends at its `;`, a `functional!` one at its body's braces.
pub fn split_items(rest: TokenStream, functional: bool) -> Vec<TokenStream> {
    let mut items = Vec::new();
    let mut cur = TokenStream::new();
    for t in rest {
        let end = match &t {
            TokenTree::Punct(p) => !functional && p.as_char() == ';',
            TokenTree::Group(g) => functional && g.delimiter() == Delimiter::Brace,
            _ => false,
        };
        cur.extend(std::iter::once(t));
        if end {
            items.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        items.push(cur);
    }
    items
}

/// The callback of model `ident` (see the module's documentation), declared with `kind`,
/// `preamble` and `item`.
pub fn export(ident: &Ident, kind: &str, preamble: &TokenStream, item: &TokenStream) -> TokenStream {
    let m = format_ident!("__keras_model_{}", ident);
    let kind = Ident::new(kind, Span::call_site());
    quote! {
        #[doc(hidden)]
        #[allow(unused_macros)]
        macro_rules! #m {
            ($mac:ident { $($rest:tt)* }) => {
                ::keras::$mac! { @model #ident = #kind { #preamble #item } $($rest)* }
            };
        }
        #[doc(hidden)]
        #[allow(unused_imports)]
        pub(crate) use #m;
    }
}

/// The graph of a model brought in by `use`, lowered again from its tokens, with its Keras
/// class; `None` when it does not lower (its own macro reports why).
pub fn lower(r: &Resolved) -> Option<(Graph, &'static str)> {
    let mut diag = Diag::default();
    let (pre, rest) = preamble(r.body.clone()).ok()?;
    let models = pre.models();
    let name = crate::expand::snake_case(&r.name.to_string());
    if r.kind == "sequential" {
        let crate::parse::Input::Items(items) = parse(rest).ok()? else { return None };
        let item = items.first()?;
        let g = crate::lower::sequential(&item.chain, None, &name, &mut diag, &models)?;
        diag.is_empty().then_some((g, "Sequential"))
    } else {
        let items = syn::parse2::<Items>(rest).ok()?.0;
        let item = items.first()?;
        let g = crate::lower::functional(item, &mut diag, &models)?;
        diag.is_empty().then_some((g, "Functional"))
    }
}
