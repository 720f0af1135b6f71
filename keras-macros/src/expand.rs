//! Code generation: the model struct, its consts, and straight-line forward/backward passes over
//! the runtime's layer types, every dimension and offset a literal.

use crate::catalog::time_distributed::TimeDistributed;
use crate::catalog::{Weight, fmt_shape};
use crate::graph::{Entry, Graph, Merge, Node, Op, Src, Sub, ViewNode, concat_axis};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::{Attribute, Visibility};

/// What the generated struct is called and how it is declared.
pub struct Decl<'a> {
    pub attrs: &'a [Attribute],
    pub vis: &'a Visibility,
    pub ident: &'a Ident,
    /// The model's name in Keras terms (`summary()` title).
    pub name: String,
}

thread_local! {
    /// The backend parameter of the model being expanded (see [`backend_param`]).
    static BACKEND: std::cell::RefCell<Option<Ident>> = const { std::cell::RefCell::new(None) };
}

/// The generated struct's backend type parameter: `B`, or `Backend` for a model named `B`
/// (whose own name would shadow the parameter). Later [`backend`] calls of this expansion
/// return it.
pub fn backend_param(decl: &Decl<'_>) -> Ident {
    let ident = Ident::new(if decl.ident == "B" { "Backend" } else { "B" }, Span::call_site());
    BACKEND.with(|b| *b.borrow_mut() = Some(ident.clone()));
    ident
}

/// The backend parameter of the model being expanded.
pub fn backend() -> Ident {
    BACKEND.with(|b| b.borrow().clone()).unwrap_or_else(|| Ident::new("B", Span::call_site()))
}

pub use keras_naming::snake_case;

pub fn usizes(v: &[usize]) -> TokenStream {
    quote!(&[#(#v),*])
}

/// A count of floats known at expansion (`known`) plus terms rustc evaluates: the weights of
/// custom layers, read from their `CustomLayer` impls. Without terms its tokens are the
/// literal, as before custom layers existed.
#[derive(Clone, Debug, Default)]
pub struct Count {
    pub known: usize,
    pub terms: Vec<TokenStream>,
}

impl Count {
    /// A number known at expansion.
    pub fn known(n: usize) -> Count {
        Count { known: n, terms: Vec::new() }
    }

    /// `self + n`.
    pub fn plus(&self, n: usize) -> Count {
        Count { known: self.known + n, terms: self.terms.clone() }
    }

    /// `self + other`.
    pub fn add(&self, other: &Count) -> Count {
        Count { known: self.known + other.known, terms: self.terms.iter().chain(&other.terms).cloned().collect() }
    }

    /// The number, when no custom layer's term is in it.
    pub fn value(&self) -> Option<usize> {
        self.terms.is_empty().then_some(self.known)
    }
}

impl quote::ToTokens for Count {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let known = self.known;
        if self.terms.is_empty() {
            known.to_tokens(tokens);
        } else {
            let terms = &self.terms;
            quote!((#known #(+ #terms)*)).to_tokens(tokens);
        }
    }
}

/// A custom layer as the generated code names it: its type and widths.
#[derive(Clone)]
pub struct CustomRef {
    /// The user's type.
    pub ty: TokenStream,
    pub in_width: usize,
    pub out_width: usize,
}

impl CustomRef {
    /// `<T as CustomLayer<IN, OUT>>`.
    pub fn path(&self) -> TokenStream {
        let (ty, i, o) = (&self.ty, self.in_width, self.out_width);
        quote!(<#ty as ::keras::layers::custom::CustomLayer<#i, #o>>)
    }

    /// Its trainable floats, as a count.
    pub fn trainable(&self) -> Count {
        let path = self.path();
        Count { known: 0, terms: vec![quote!(#path::TRAINABLE_PARAMS)] }
    }

    /// Its non-trainable floats, as a count.
    pub fn non_trainable(&self) -> Count {
        let path = self.path();
        Count { known: 0, terms: vec![quote!(#path::NON_TRAINABLE_PARAMS)] }
    }
}

/// Entries of `Model::WEIGHTS`: one `WeightSpec` the macro wrote, or a custom layer's, made by
/// rustc from its impl.
pub enum SpecPart {
    One(TokenStream),
    Custom { specs: TokenStream, len: TokenStream },
}

/// `Model::WEIGHTS`' initializer: the list as written, or (with custom layers) its parts joined
/// at compile time.
pub fn weights_const(parts: &[SpecPart]) -> TokenStream {
    if parts.iter().all(|p| matches!(p, SpecPart::One(_))) {
        let specs = parts.iter().map(|p| match p {
            SpecPart::One(t) => t,
            SpecPart::Custom { .. } => unreachable!("checked above"),
        });
        return quote!(&[#(#specs),*]);
    }
    let mut groups: Vec<TokenStream> = Vec::new();
    let mut run: Vec<&TokenStream> = Vec::new();
    let mut lens: Vec<TokenStream> = Vec::new();
    let mut ones = 0usize;
    for p in parts {
        match p {
            SpecPart::One(t) => {
                run.push(t);
                ones += 1;
            }
            SpecPart::Custom { specs, len } => {
                if !run.is_empty() {
                    groups.push(quote!(&[#(#run),*]));
                    run.clear();
                }
                groups.push(quote!(&#specs));
                lens.push(len.clone());
            }
        }
    }
    if !run.is_empty() {
        groups.push(quote!(&[#(#run),*]));
    }
    quote!(&::keras::layers::custom::concat_specs::<{ #ones #(+ #lens)* }>(&[#(#groups),*]))
}

/// The struct and its `Model` implementation for a checked graph.
pub fn expand(decl: &Decl<'_>, m: &Graph) -> TokenStream {
    let bk = crate::expand::backend_param(decl);
    let cpu = quote!(::keras::Cpu);
    let b = quote!(<#bk as ::keras::backend::Device>);
    let n_in = m.inputs.len();
    let in_lens: Vec<usize> = m.inputs.iter().map(|(_, s)| s.iter().product()).collect();
    let in_offs: Vec<usize> = in_lens.iter().scan(0, |acc, l| Some(std::mem::replace(acc, *acc + l))).collect();
    let in_size: usize = in_lens.iter().sum();
    let input_shape = if n_in == 1 { m.inputs[0].1.clone() } else { vec![in_size] };
    // Several outputs are returned side by side, `[a | b]` per sample (`OUTPUTS` says where
    // each lies); one is returned as it is.
    let heads = &m.outputs;
    let several = heads.len() > 1;
    let head_lens: Vec<usize> = heads.iter().map(|&j| m.nodes[j].output.iter().product()).collect();
    let out_size: usize = head_lens.iter().sum();
    let joined = vec![out_size];
    let out_shape = if several { &joined } else { &m.nodes[heads[0]].output };
    let out_dim = match out_shape.len() + 1 {
        r @ 2..=6 => {
            let ix = format_ident!("Ix{}", r);
            quote!(::keras::ndarray::#ix)
        }
        _ => quote!(::keras::ndarray::IxDyn),
    };
    let len = |j: usize| m.nodes[j].output.iter().product::<usize>();

    // Arena offsets, in Keras order.
    let mut pl = Placer {
        m,
        arenas: Arenas::new(m.non_trainable.clone()),
        constant_specs: Vec::new(),
        ranges: (0..m.uniques.len()).map(|_| ((Count::known(0), Count::known(0)), (Count::known(0), Count::known(0)))).collect(),
        weight_specs: Vec::new(),
    };
    let mut layer_specs = Vec::new();
    let mut layer_names = Vec::new();
    let mut submodels = Vec::new();
    for e in &m.order {
        match *e {
            // A Sequential's input is no layer of it.
            Entry::Input(_) if m.sequential => {}
            Entry::Input(k) => {
                let name = m.inputs[k].0.unraw().to_string();
                layer_specs.push(layer_spec(&name, "InputLayer", &m.inputs[k].1, &Count::known(0), None, &[]));
                layer_names.push(name);
            }
            Entry::Unique(u) => {
                let l = &m.uniques[u];
                let (spec, sub) = pl.layer(u, &l.name, None, layer_specs.len());
                layer_specs.push(spec);
                submodels.extend(sub);
                layer_names.push(l.name.clone());
            }
        }
    }
    let Placer { arenas, constant_specs, ranges, weight_specs, .. } = pl;
    // A layer's trainable floats: known, or a custom layer's, counted by rustc.
    let plen_of = |u: usize| -> Count {
        match &m.uniques[u].custom {
            Some(c) => c.trainable(),
            None => Count::known(ranges[u].0.1.known - ranges[u].0.0.known),
        }
    };
    // The calls, as `Model::NODES`: layers by their index in `LAYERS`.
    let node_specs = node_specs(&m.order, &m.view);

    // Workspace slots: inputs split out of the batch (several inputs), each call's output and
    // scratch, then each call's output gradient and (when several calls consume it) a second
    // gradient buffer to sum into it.
    let mut slot_sizes: Vec<TokenStream> = Vec::new();
    let mut push = |size: TokenStream| {
        slot_sizes.push(size);
        format_ident!("s{}", slot_sizes.len() - 1)
    };
    // A batch's inputs lie one after the other in `x`; they get slots of their own when an
    // elementwise merge reads one (its tensors are one slice of views, which `x` cannot join).
    let split = m
        .nodes
        .iter()
        .any(|n| matches!(m.uniques[n.unique].op, Op::Merge(Merge::Elementwise(_))) && n.inputs.iter().any(|s| matches!(s, Src::Input(_))));
    let in_slots: Vec<Ident> = if split { in_lens.iter().map(|l| push(quote!(#l))).collect() } else { Vec::new() };
    let mut out_slots = Vec::new();
    let mut scratch_slots = Vec::new();
    for (j, n) in m.nodes.iter().enumerate() {
        let l = len(j);
        out_slots.push(push(quote!(#l)));
        scratch_slots.push(match &n.runtime {
            Some(rt) => {
                let (ty, r) = (&rt.ty, rt.rows_per_sample);
                push(quote!((<#ty>::SCRATCH * #r)))
            }
            None => push(quote!(0usize)),
        });
    }
    // An output's gradient comes from its loss first: a layer that also reads it adds to it.
    let mut consumers = vec![0usize; m.nodes.len()];
    for &j in heads {
        consumers[j] += 1;
    }
    for n in &m.nodes {
        for s in &n.inputs {
            if let Src::Node(i) = s {
                consumers[*i] += 1;
            }
        }
    }
    // A tensor needs its gradient only when trainable weights lie behind it (the first layer's
    // input gradient, or a branch of merges on the inputs, is not computed).
    let mut needs = vec![false; m.nodes.len()];
    for (j, n) in m.nodes.iter().enumerate() {
        // A custom layer's weights are counted by rustc: it may have some.
        let weighted = plen_of(n.unique).value() != Some(0);
        needs[j] = weighted || n.inputs.iter().any(|s| matches!(s, Src::Node(i) if needs[*i]));
    }
    // Gradient buffers share slots by liveness. The backward pass runs the calls in reverse:
    // call j's output gradient is written at the step of its last consumer (an output's, by the
    // loss before the pass) and read at call j's own step, and its second buffer (several
    // consumers) lives within that span. Buffers whose spans do not meet share a slot as large as
    // the largest of them (most of a deep network's gradients are dead at any one step). A
    // gradient nothing computes gets an empty slot.
    let step = |j: usize| m.nodes.len() - 1 - j;
    let mut last_consumer: Vec<Option<usize>> = vec![None; m.nodes.len()];
    for (k, n) in m.nodes.iter().enumerate() {
        for s in &n.inputs {
            if let Src::Node(i) = *s {
                last_consumer[i] = Some(k);
            }
        }
    }
    // (start step, end step, floats per sample, which buffer: (call, second))
    let mut lives: Vec<(usize, usize, usize, (usize, bool))> = Vec::new();
    for j in 0..m.nodes.len() {
        if !(needs[j] || heads.contains(&j)) {
            continue;
        }
        let start = if heads.contains(&j) { 0 } else { last_consumer[j].map_or(0, step) };
        lives.push((start, step(j), len(j), (j, false)));
        if consumers[j] > 1 {
            lives.push((start, step(j), len(j), (j, true)));
        }
    }
    lives.sort_by_key(|&(start, end, _, (j, second))| (start, end, j, second));
    // Shared slots: their size and the last step they are busy.
    let mut shared: Vec<(usize, usize)> = Vec::new();
    let mut assigned = std::collections::HashMap::new();
    for &(start, end, size, which) in &lives {
        // The free slot nearest in size (the smallest at least as large, else the largest).
        let free = shared.iter().enumerate().filter(|(_, (_, busy))| *busy < start).map(|(k, (sz, _))| (k, *sz));
        let pick = free.min_by_key(|&(_, sz)| if sz >= size { (0, sz - size) } else { (1, size - sz) }).map(|(k, _)| k);
        let k = match pick {
            Some(k) => k,
            None => {
                shared.push((0, 0));
                shared.len() - 1
            }
        };
        shared[k] = (shared[k].0.max(size), end);
        assigned.insert(which, k);
    }
    let shared_slots: Vec<Ident> = shared.iter().map(|(size, _)| push(quote!(#size))).collect();
    let unused = push(quote!(0usize));
    let grad_slots: Vec<Ident> =
        (0..m.nodes.len()).map(|j| assigned.get(&(j, false)).map_or(unused.clone(), |&k| shared_slots[k].clone())).collect();
    let temp_slots: Vec<Option<Ident>> = (0..m.nodes.len()).map(|j| assigned.get(&(j, true)).map(|&k| shared_slots[k].clone())).collect();
    // The outputs side by side, for `predict`.
    let joined_slot = several.then(|| push(quote!(#out_size)));
    let n_slots = slot_sizes.len();
    let slot_idents: Vec<Ident> = (0..n_slots).map(|i| format_ident!("s{}", i)).collect();

    let view = |s: Src| match s {
        Src::Input(_) if !split && n_in == 1 => quote!(#b::shorten(&x)),
        Src::Input(k) if !split => {
            let (l, off) = (in_lens[k], in_offs[k]);
            quote!(#b::sub(#b::shorten(&x), batch * #off..batch * (#off + #l)))
        }
        Src::Input(k) => {
            let (slot, l) = (&in_slots[k], in_lens[k]);
            quote!(#b::view(#slot, 0..batch * #l))
        }
        Src::Node(i) => {
            let (slot, l) = (&out_slots[i], len(i));
            quote!(#b::view(#slot, 0..batch * #l))
        }
    };

    let mut forward = Vec::new();
    let mut checks = m.asserts.clone();
    let mut activity_specs = Vec::new();
    for k in 0..n_in {
        if split {
            let (slot, l, off) = (&in_slots[k], in_lens[k], in_offs[k]);
            forward.push(quote!(#b::copy(ctx.device, #b::sub(x, batch * #off..batch * (#off + #l)), #b::view_mut(#slot, 0..batch * #l));));
        }
    }
    for (j, n) in m.nodes.iter().enumerate() {
        let u = &m.uniques[n.unique];
        let (out, scratch, l) = (&out_slots[j], &scratch_slots[j], len(j));
        match (&u.op, &n.runtime) {
            (Op::Layer(layer), Some(rt)) => {
                let ((p0, p1), (s0, s1)) = &ranges[n.unique];
                let (ty, r, iw, ow) = (&rt.ty, rt.rows_per_sample, rt.in_width, rt.out_width);
                let plen = plen_of(n.unique);
                if u.calls.first() == Some(&j) {
                    checks.extend(u.checks.iter().cloned());
                }
                if u.custom.is_none() {
                    checks.push(quote!(::core::assert!(<#ty>::PARAMS == #plen);));
                }
                let xv = view(n.inputs[0]);
                forward.push(forward_call(
                    &quote!(#bk),
                    rt,
                    quote!(#b::view(params, #p0..#p1)),
                    quote!(#b::view_mut(state, #s0..#s1)),
                    quote!(::keras::layers::Rows::<#bk, #iw>::new(#xv, batch * #r)),
                    quote!(::keras::layers::RowsMut::<#bk, #ow>::new(::keras::model::all_mut::<#bk>(#out), batch * #r)),
                    quote!(::keras::model::all_mut::<#bk>(#scratch)),
                    quote!(training),
                ));
                if let Some(reg) = layer.activity_regularizer() {
                    let slot = slot_index(&out_slots[j]);
                    activity_specs.push(quote!(::keras::model::Activity { slot: #slot, len: #l, regularizer: #reg }));
                }
            }
            (Op::Merge(Merge::Elementwise(op)), _) => {
                let op = format_ident!("{}", op);
                let xs = n.inputs.iter().map(|s| view(*s));
                forward.push(quote!(ctx.device.merge(::keras::backend::MergeOp::#op, &[#(#xs),*], #b::view_mut(#out, 0..batch * #l));));
            }
            (Op::Merge(Merge::Scale(scale)), _) => {
                let scale = *scale as f32;
                // The inputs as exactly the batch's floats (a model input's view is all of `x`).
                let (x, y) = (view(n.inputs[0]), view(n.inputs[1]));
                let (x, y) = (quote!(#b::sub(#x, 0..batch * #l)), quote!(#b::sub(#y, 0..batch * #l)));
                forward.push(quote! {
                    #b::copy(ctx.device, #y, #b::view_mut(#out, 0..batch * #l));
                    #b::scale(ctx.device, #b::view_mut(#out, 0..batch * #l), #scale);
                    #b::add(ctx.device, #x, #b::view_mut(#out, 0..batch * #l));
                });
            }
            (Op::Merge(Merge::Concatenate(axis)), _) => {
                let (outer, total, parts) = concat_layout(m, n, *axis);
                for (s, w, off) in parts {
                    let xv = view(s);
                    let c = copy_cols(quote!(batch * #outer), w, (w, 0), (total, off));
                    forward.push(quote!(ctx.device.copy_cols(&#c, #xv, #b::view_mut(#out, 0..batch * #l));));
                }
            }
            (Op::Layer(_), None) => unreachable!("a layer call has a runtime"),
            (Op::Model(_), _) => unreachable!("a nested model's calls are its layers'"),
        }
    }
    // Several outputs side by side for `predict` (training reads each in its own slot).
    if let Some(joined) = &joined_slot {
        let mut off = 0;
        let mut copies = Vec::new();
        for (&j, &l) in heads.iter().zip(&head_lens) {
            let c = copy_cols(quote!(batch), l, (l, 0), (out_size, off));
            let src = view(Src::Node(j));
            copies.push(quote!(ctx.device.copy_cols(&#c, #src, #b::view_mut(#joined, 0..batch * #out_size));));
            off += l;
        }
        forward.push(quote!(if !training { #(#copies)* }));
    }

    // Backward, from the output: the first consumer of a tensor (in this order) writes its
    // gradient, later ones write the second buffer and add it; the same for a shared layer's
    // weight gradients, through the model's gradient scratch.
    let mut backward = Vec::new();
    let mut written = vec![false; m.nodes.len()];
    for &j in heads {
        written[j] = true;
    }
    let mut weights_written = vec![false; m.uniques.len()];
    let mut grad_scratch = 0usize;
    let mut grad_scratch_custom: Vec<TokenStream> = Vec::new();
    for j in (0..m.nodes.len()).rev() {
        let n = &m.nodes[j];
        let u = &m.uniques[n.unique];
        let (out, scratch, grad, l) = (&out_slots[j], &scratch_slots[j], &grad_slots[j], len(j));
        // Where the gradient for input `s` goes, and what adds it afterwards.
        let mut target = |s: Src| -> Option<(Ident, usize, TokenStream)> {
            let Src::Node(i) = s else { return None };
            if !needs[i] {
                return None;
            }
            let li = len(i);
            if std::mem::replace(&mut written[i], true) {
                let (t, g) = (temp_slots[i].clone().expect("a tensor with several consumers has a second buffer"), &grad_slots[i]);
                let add = quote!(#b::add(ctx.device, #b::view(#t, 0..batch * #li), #b::view_mut(#g, 0..batch * #li)););
                Some((t, li, add))
            } else {
                Some((grad_slots[i].clone(), li, quote!()))
            }
        };
        match (&u.op, &n.runtime) {
            (Op::Layer(layer), Some(rt)) => {
                let ((p0, p1), (s0, s1)) = &ranges[n.unique];
                let plen = plen_of(n.unique);
                let (r, iw, ow) = (rt.rows_per_sample, rt.in_width, rt.out_width);
                let dx_target = target(n.inputs[0]);
                if plen.value() == Some(0) && dx_target.is_none() {
                    continue;
                }
                if let Some(reg) = layer.activity_regularizer() {
                    backward.push(quote! {
                        ctx.device.regularize(
                            &#reg.scaled(1.0 / batch as f32),
                            #b::view(#out, 0..batch * #l),
                            ::core::option::Option::Some(#b::view_mut(#grad, 0..batch * #l)),
                            0.0,
                            ::core::option::Option::None,
                        );
                    });
                }
                let xv = view(n.inputs[0]);
                let (dw, after_w) = if std::mem::replace(&mut weights_written[n.unique], true) && plen.value() != Some(0) {
                    match plen.value() {
                        Some(p) => grad_scratch = grad_scratch.max(p),
                        None => grad_scratch_custom.push(quote!(#plen)),
                    }
                    (
                        quote!(#b::view_mut(grad_scratch, 0..#plen)),
                        quote!(#b::add(ctx.device, #b::view(grad_scratch, 0..#plen), #b::view_mut(grads, #p0..#p1));),
                    )
                } else {
                    (quote!(#b::view_mut(grads, #p0..#p1)), quote!())
                };
                let (dx, after_x) = match dx_target {
                    None => (quote!(::core::option::Option::None::<::keras::layers::RowsMut<'_, #bk, #iw>>), quote!()),
                    Some((t, _, add)) => (
                        quote!(::core::option::Option::Some(::keras::layers::RowsMut::<#bk, #iw>::new(::keras::model::all_mut::<#bk>(#t), batch * #r))),
                        add,
                    ),
                };
                let call = backward_call(
                    rt,
                    [
                        quote!(#b::view(params, #p0..#p1)),
                        dw,
                        quote!(#b::view(state, #s0..#s1)),
                        quote!(::keras::layers::Rows::<#bk, #iw>::new(#xv, batch * #r)),
                        quote!(::keras::layers::Rows::<#bk, #ow>::new(::keras::model::all::<#bk>(#out), batch * #r)),
                        quote!(::keras::model::all_mut::<#bk>(#scratch)),
                        quote!(::keras::layers::RowsMut::<#bk, #ow>::new(::keras::model::all_mut::<#bk>(#grad), batch * #r)),
                        dx,
                    ],
                );
                backward.push(quote! {
                    #call
                    #after_w
                    #after_x
                });
            }
            (Op::Merge(Merge::Elementwise(op)), _) => {
                let op = format_ident!("{}", op);
                for (p, s) in n.inputs.iter().enumerate() {
                    let Some((t, li, add)) = target(*s) else { continue };
                    let xs = n.inputs.iter().map(|s| view(*s));
                    backward.push(quote! {
                        ctx.device.merge_backward(
                            ::keras::backend::MergeOp::#op,
                            #p,
                            &[#(#xs),*],
                            #b::view(#out, 0..batch * #l),
                            #b::view(#grad, 0..batch * #l),
                            #b::view_mut(#t, 0..batch * #li),
                        );
                        #add
                    });
                }
            }
            (Op::Merge(Merge::Scale(scale)), _) => {
                let scale = *scale as f32;
                for (p, s) in n.inputs.iter().enumerate() {
                    let Some((t, li, add)) = target(*s) else { continue };
                    let scaled = (p == 1).then(|| quote!(#b::scale(ctx.device, #b::view_mut(#t, 0..batch * #li), #scale);));
                    backward.push(quote! {
                        #b::copy(ctx.device, #b::view(#grad, 0..batch * #l), #b::view_mut(#t, 0..batch * #li));
                        #scaled
                        #add
                    });
                }
            }
            (Op::Merge(Merge::Concatenate(axis)), _) => {
                let (outer, total, parts) = concat_layout(m, n, *axis);
                for (s, w, off) in parts {
                    if let Some((t, li, add)) = target(s) {
                        let c = copy_cols(quote!(batch * #outer), w, (total, off), (w, 0));
                        backward.push(quote! {
                            ctx.device.copy_cols(&#c, #b::view(#grad, 0..batch * #l), #b::view_mut(#t, 0..batch * #li));
                            #add
                        });
                    }
                }
            }
            (Op::Layer(_), None) => unreachable!("a layer call has a runtime"),
            (Op::Model(_), _) => unreachable!("a nested model's calls are its layers'"),
        }
    }

    // One sample on the CPU, activations in the per-thread buffer; inputs read in place.
    let in_locals: Vec<Ident> = (0..n_in).map(|k| format_ident!("__input_{}", k)).collect();
    let mut infer_buffers = Vec::new();
    let mut infer_sizes = Vec::new();
    let mut infer = Vec::new();
    let one = |s: Src| match s {
        Src::Input(k) => {
            let i = &in_locals[k];
            quote!(&#i[..])
        }
        Src::Node(i) => {
            let a = format_ident!("a{}", i);
            quote!(&#a[..])
        }
    };
    for (j, n) in m.nodes.iter().enumerate() {
        let u = &m.uniques[n.unique];
        let (a, sc, l) = (format_ident!("a{}", j), format_ident!("scratch{}", j), len(j));
        let scratch_size = match &n.runtime {
            Some(rt) => {
                let (ty, r) = (&rt.ty, rt.rows_per_sample);
                quote!((<#ty>::SCRATCH * #r))
            }
            None => quote!(0usize),
        };
        infer_sizes.push(quote!(#l + #scratch_size));
        infer_buffers.push(quote! {
            let (#a, buf) = buf.split_at_mut(#l);
            let (#sc, buf) = buf.split_at_mut(#scratch_size);
        });
        match (&u.op, &n.runtime) {
            (Op::Layer(_), Some(rt)) => {
                let ((p0, p1), (s0, s1)) = &ranges[n.unique];
                let (r, iw, ow) = (rt.rows_per_sample, rt.in_width, rt.out_width);
                let xv = one(n.inputs[0]);
                infer.push(forward_call(
                    &cpu,
                    rt,
                    quote!(&params[#p0..#p1]),
                    quote!(&mut state[#s0..#s1]),
                    quote!(::keras::layers::Rows::<#cpu, #iw>::new(#xv, #r)),
                    quote!(::keras::layers::RowsMut::<#cpu, #ow>::new(&mut #a[..], #r)),
                    quote!(&mut #sc[..]),
                    quote!(false),
                ));
            }
            (Op::Merge(Merge::Elementwise(op)), _) => {
                let op = format_ident!("{}", op);
                let xs = n.inputs.iter().map(|s| one(*s));
                infer.push(quote!(::keras::backend::LayoutOps::merge(&cpu, ::keras::backend::MergeOp::#op, &[#(#xs),*], &mut #a[..]);));
            }
            (Op::Merge(Merge::Scale(scale)), _) => {
                let scale = *scale as f32;
                let (x, y) = (one(n.inputs[0]), one(n.inputs[1]));
                infer.push(quote! {
                    ::keras::backend::Device::copy(&cpu, #y, &mut #a[..]);
                    ::keras::backend::Device::scale(&cpu, &mut #a[..], #scale);
                    ::keras::backend::Device::add(&cpu, #x, &mut #a[..]);
                });
            }
            (Op::Merge(Merge::Concatenate(axis)), _) => {
                let (outer, total, parts) = concat_layout(m, n, *axis);
                for (s, w, off) in parts {
                    let xv = one(s);
                    let c = copy_cols(quote!(#outer), w, (w, 0), (total, off));
                    infer.push(quote!(::keras::backend::LayoutOps::copy_cols(&cpu, &#c, #xv, &mut #a[..]);));
                }
            }
            (Op::Layer(_), None) => unreachable!("a layer call has a runtime"),
            (Op::Model(_), _) => unreachable!("a nested model's calls are its layers'"),
        }
    }
    let outs: Vec<(Ident, usize)> = heads.iter().zip(&head_lens).map(|(&j, &l)| (format_ident!("a{}", j), l)).collect();
    // `[f32; N]`, or a tuple of them for several outputs.
    let out_ty = if several {
        let lens = &head_lens;
        quote!((#([f32; #lens]),*))
    } else {
        quote!([f32; #out_size])
    };
    // A Sequential's one input is "the sample", a functional model's are named.
    let doc = if m.sequential {
        " Runs one sample through the model on the CPU (inference mode), without allocating after the first call on a thread: activations live in a per-thread buffer that is reused. For a sample in a `Vec` or an array's row, see `predict_one_slice`; a large literal (`&[0.0; 150528]`) makes rustc slow, where a `Vec` does not.".to_string()
    } else {
        let doc_inputs = m.inputs.iter().map(|(i, s)| format!("`{i}` {}", fmt_shape(s))).collect::<Vec<_>>().join(", ");
        format!(
            " Runs one sample ({doc_inputs}) through the model on the CPU (inference mode), without allocating after the first call on a thread: activations live in a per-thread buffer that is reused."
        )
    };
    let body = infer_body(&arenas.state_len(), &infer_sizes, &infer_buffers, &infer, &outs);
    // An input an Embedding reads takes ids, `&[i32; N]`, checked: `predict_one` then returns a
    // `Result`.
    let any_ids = m.vocab.iter().any(Option::is_some);
    let params = m.inputs.iter().zip(&in_lens).zip(&m.vocab).map(|(((i, _), l), v)| match v {
        Some(_) => quote!(#i: &[i32; #l]),
        None => quote!(#i: &[f32; #l]),
    });
    let locals = m.inputs.iter().zip(&in_locals).zip(in_lens.iter().zip(&m.vocab)).map(|(((i, _), local), (l, v))| match v {
        None => quote!(let #local = #i;),
        Some(vocab) => {
            let what = if m.sequential { String::new() } else { format!("`{}` ", i.unraw()) };
            quote! {
                let mut #local = [0f32; #l];
                for (i, (&id, v)) in #i.iter().zip(#local.iter_mut()).enumerate() {
                    if id < 0 || id as usize >= #vocab {
                        return ::core::result::Result::Err(::keras::Error::value(
                            ::std::format!("{}token id at position {}", #what, i),
                            ::std::format!("an integer in [0, {}) (the Embedding's input_dim is {})", #vocab, #vocab),
                            id,
                        ));
                    }
                    *v = id as f32;
                }
            }
        }
    });
    let predict_one = if any_ids {
        let doc = format!("{doc} An id outside an Embedding's `[0, input_dim)` is an error naming its input and position.");
        quote! {
            #[doc = #doc]
            #[allow(non_snake_case)]
            #[inline]
            pub fn predict_one(&self, #(#params),*) -> ::keras::Result<#out_ty> {
                #(#locals)*
                ::core::result::Result::Ok({ #body })
            }
        }
    } else {
        // The checked form over slices: each input's length, then its values.
        let slice_params = m.inputs.iter().map(|(i, _)| quote!(#i: &[f32]));
        let checks = m.inputs.iter().zip(&in_lens).map(|((i, s), l)| {
            let what = if m.sequential { "predict_one_slice: the sample".to_string() } else { format!("predict_one_slice: input `{}`", i.unraw()) };
            let shape = format!("{l} values (one sample of {})", fmt_shape(s));
            quote! {
                let #i: &[f32; #l] = #i.try_into().map_err(|_| ::keras::Error::value(#what, #shape, ::std::format!("{} values", #i.len())))?;
                if let ::core::option::Option::Some((index, &value)) = #i.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                    return ::core::result::Result::Err(::keras::Error::NonFinite { what: #what.into(), value, index });
                }
            }
        });
        let names = m.inputs.iter().map(|(i, _)| i);
        quote! {
            #[doc = #doc]
            #[allow(non_snake_case)]
            #[inline]
            pub fn predict_one(&self, #(#params),*) -> #out_ty {
                #(#locals)*
                #body
            }

            /// `predict_one` of a sample given as one slice per input, each flat in row-major
            /// order (a `Vec`, an image's pixels): an error, not a panic, when a length is not
            /// its input's size, and a NaN or infinity is refused as `predict` refuses it.
            #[allow(non_snake_case)]
            #[inline]
            pub fn predict_one_slice(&self, #(#slice_params),*) -> ::keras::Result<#out_ty> {
                #(#checks)*
                ::core::result::Result::Ok(self.predict_one(#(#names),*))
            }
        }
    };

    let inputs = (n_in > 1).then(|| {
        m.inputs
            .iter()
            .zip(&m.vocab)
            .map(|((i, s), v)| {
                let (name, shape) = (i.unraw().to_string(), usizes(s));
                let indices = match v {
                    Some(n) => quote!(::core::option::Option::Some(#n)),
                    None => quote!(::core::option::Option::None),
                };
                quote!(::keras::model::InputSpec { name: #name, shape: #shape, indices: #indices })
            })
            .collect()
    });
    let e = Emit {
        params: m.trainable.add(&m.non_trainable),
        trainable: m.trainable.clone(),
        non_trainable: m.non_trainable.clone(),
        input: usizes(&input_shape),
        output: usizes(out_shape),
        in_size,
        out_size,
        predictions: if several {
            quote!(::std::vec::Vec<::keras::ndarray::ArrayD<f32>>)
        } else {
            quote!(::keras::ndarray::Array<f32, #out_dim>)
        },
        out_dim,
        layer_names,
        input_element: if n_in == 1 && m.vocab[0].is_some() { quote!(i32) } else { quote!(f32) },
        input_indices: match m.vocab[0] {
            Some(n) if n_in == 1 => quote!(::core::option::Option::Some(#n)),
            _ => quote!(::core::option::Option::None),
        },
        predict_one,
        layer_specs,
        weight_specs,
        constants: constant_specs,
        slot_sizes,
        output_slot: slot_index(joined_slot.as_ref().unwrap_or(&out_slots[heads[0]])),
        output_grad_slot: slot_index(&grad_slots[heads[0]]),
        outputs: several.then(|| {
            heads
                .iter()
                .map(|&j| {
                    // An output is named by its layer as Keras sees it (a nested model's: the model).
                    let v = m.view.iter().find(|v| v.node == j).expect("an output is a view node's");
                    let (name, shape) = (&m.uniques[v.unique].name, usizes(&m.nodes[j].output));
                    let (slot, grad_slot) = (slot_index(&out_slots[j]), slot_index(&grad_slots[j]));
                    quote!(::keras::model::OutputSpec { name: #name, shape: #shape, slot: #slot, grad_slot: #grad_slot })
                })
                .collect()
        }),
        checks,
        n_slots,
        slot_idents,
        forward,
        backward,
        activity: activity_specs,
        grad_scratch: if grad_scratch_custom.is_empty() {
            Count::known(grad_scratch)
        } else {
            Count {
                known: 0,
                terms: vec![
                    quote!({ let mut most = #grad_scratch; #(if #grad_scratch_custom > most { most = #grad_scratch_custom; })* most }),
                ],
            }
        },
        nodes: (!m.sequential).then_some(node_specs),
        submodels,
        inputs,
    };
    emit(decl, &e)
}

/// How `Concatenate` along `axis` lays out node `n`'s inputs: rows per sample (the axes before
/// `axis`), the output's row width, and each input with its row width and offset in the row.
fn concat_layout(m: &Graph, n: &Node, axis: i64) -> (usize, usize, Vec<(Src, usize, usize)>) {
    let a = concat_axis(axis, n.output.len()).expect("checked");
    let outer: usize = n.output[..a].iter().product();
    let total: usize = n.output[a..].iter().product();
    let mut off = 0usize;
    let parts = n
        .inputs
        .iter()
        .map(|&s| {
            let w = src_len(m, s) / outer;
            off += w;
            (s, w, off - w)
        })
        .collect();
    (outer, total, parts)
}

/// Floats per sample of a tensor.
fn src_len(m: &Graph, s: Src) -> usize {
    match s {
        Src::Input(k) => m.inputs[k].1.iter().product(),
        Src::Node(j) => m.nodes[j].output.iter().product(),
    }
}

/// The index of slot identifier `sN`.
fn slot_index(slot: &Ident) -> usize {
    slot.to_string()[1..].parse().expect("slot identifiers are s<index>")
}

/// A `CopyCols` descriptor: `width` floats per row of `rows` (tokens), from `(width, offset)` of
/// the source rows to `(width, offset)` of the destination rows.
fn copy_cols(rows: TokenStream, width: usize, (src_width, src_off): (usize, usize), (dst_width, dst_off): (usize, usize)) -> TokenStream {
    quote!(::keras::backend::CopyCols { rows: #rows, width: #width, src_width: #src_width, src_off: #src_off, dst_width: #dst_width, dst_off: #dst_off })
}

/// The body of `predict_one`, evaluating to the output array (a tuple of them for several
/// outputs): the state (`state_len` floats, constants included) copied into the per-thread
/// buffer, each layer's activations and scratch carved out of it (`buffers`, of `sizes`), the
/// layers run (`steps`), the outputs (`outs`: activations and lengths) copied out.
pub fn infer_body(
    state_len: &Count,
    sizes: &[TokenStream],
    buffers: &[TokenStream],
    steps: &[TokenStream],
    outs: &[(Ident, usize)],
) -> TokenStream {
    let copies = outs.iter().map(|(a, l)| {
        quote!({
            let mut out = [0f32; #l];
            out.copy_from_slice(&#a[..#l]);
            out
        })
    });
    let result = if outs.len() == 1 { quote!(#(#copies)*) } else { quote!((#(#copies),*)) };
    quote! {
        let cpu = ::keras::Cpu::new();
        let ctx = ::keras::layers::Ctx::new(&cpu, self.core.stream());
        let params: &[f32] = self.core.params();
        ::keras::model::with_infer_buffer(#state_len #(+ #sizes)*, |buf| {
            let (state, buf) = buf.split_at_mut(#state_len);
            state.copy_from_slice(self.core.state());
            #(#buffers)*
            let _ = buf;
            #(#steps)*
            #result
        })
    }
}

/// A call of a layer's forward pass through the `Layer` trait, on backend `backend`, with the
/// views (as tokens) of its `Forward` arguments; `ctx` must be in scope.
#[allow(clippy::too_many_arguments)]
pub fn forward_call(
    backend: &TokenStream,
    rt: &crate::catalog::Runtime,
    params: TokenStream,
    state: TokenStream,
    x: TokenStream,
    y: TokenStream,
    scratch: TokenStream,
    training: TokenStream,
) -> TokenStream {
    let (ty, ctor, iw, ow) = (&rt.ty, &rt.ctor, rt.in_width, rt.out_width);
    quote! {{
        let layer = #ctor;
        <#ty as ::keras::layers::Layer<#backend, #iw, #ow>>::forward(
            &layer,
            ::keras::layers::Forward { ctx: &ctx, params: #params, state: #state, x: #x, y: #y, scratch: #scratch, training: #training },
        );
    }}
}

/// A call of a layer's backward pass through the `Layer` trait (on the model's backend `B`),
/// with the views of its `Backward` arguments in their order: params, grads, state, x, y,
/// scratch, dy, dx.
pub fn backward_call(rt: &crate::catalog::Runtime, views: [TokenStream; 8]) -> TokenStream {
    let bk = backend();
    let (ty, ctor, iw, ow) = (&rt.ty, &rt.ctor, rt.in_width, rt.out_width);
    let [params, grads, state, x, y, scratch, dy, dx] = views;
    quote! {{
        let layer = #ctor;
        <#ty as ::keras::layers::Layer<#bk, #iw, #ow>>::backward(
            &layer,
            ::keras::layers::Backward { ctx: &ctx, params: #params, grads: #grads, state: #state, x: #x, y: #y, scratch: #scratch, dy: #dy, dx: #dx },
        );
    }}
}

/// `Some(t)` or `None` as tokens.
pub fn option(t: Option<&TokenStream>) -> TokenStream {
    match t {
        Some(t) => quote!(::core::option::Option::Some(#t)),
        None => quote!(::core::option::Option::None),
    }
}

/// Where the next weight goes in the parameter (trainable) and state (non-trainable) arenas, and
/// the next constant (past every non-trainable weight in the state arena).
pub struct Arenas {
    params: Count,
    state: Count,
    constants: Count,
}

impl Arenas {
    /// Empty arenas for a model with `non_trainable` non-trainable floats.
    pub fn new(non_trainable: Count) -> Arenas {
        Arenas { params: Count::known(0), state: Count::known(0), constants: non_trainable }
    }

    /// The state arena's length once every layer is placed: its weights, then the constants.
    pub fn state_len(&self) -> Count {
        self.constants.clone()
    }

    /// Places a layer's weights (names prefixed `prefix/` inside a wrapper), pushing their
    /// `WeightSpec`s, and its constants, pushing a `Model::CONSTANTS` entry; returns the layer's
    /// parameter and state ranges (its state is its constants when it has any: a layer has
    /// non-trainable weights or constants, not both).
    pub fn place(
        &mut self,
        layer: &str,
        prefix: Option<&str>,
        weights: &[Weight],
        constants: &[f32],
        specs: &mut Vec<SpecPart>,
        constant_specs: &mut Vec<TokenStream>,
    ) -> ((Count, Count), (Count, Count)) {
        let (p0, s0) = (self.params.clone(), self.state.clone());
        for w in weights {
            let len: usize = w.shape.iter().product();
            let (arena, offset) = if w.trainable {
                let at = self.params.clone();
                self.params = self.params.plus(len);
                (quote!(Trainable), at)
            } else {
                let at = self.state.clone();
                self.state = self.state.plus(len);
                (quote!(NonTrainable), at)
            };
            let wname = match prefix {
                Some(prefix) => format!("{prefix}/{}", w.name),
                None => w.name.to_string(),
            };
            let (shape, init) = (usizes(&w.shape), &w.init);
            let (regularizer, constraint) = (option(w.regularizer.as_ref()), option(w.constraint.as_ref()));
            specs.push(SpecPart::One(quote! {
                ::keras::model::WeightSpec {
                    layer: #layer, name: #wname, shape: #shape, arena: ::keras::model::Arena::#arena, offset: #offset, init: #init,
                    regularizer: #regularizer, constraint: #constraint,
                }
            }));
        }
        if !constants.is_empty() {
            assert!(
                s0.value() == self.state.value() && s0.terms.len() == self.state.terms.len(),
                "layer `{layer}` has non-trainable weights and constants"
            );
            let c0 = self.constants.clone();
            self.constants = self.constants.plus(constants.len());
            constant_specs.push(quote!((#c0, &[#(#constants),*])));
            return ((p0, self.params.clone()), (c0, self.constants.clone()));
        }
        ((p0, self.params.clone()), (s0, self.state.clone()))
    }

    /// Places a custom layer's weights, which rustc counts from its impl.
    pub fn place_custom(&mut self, layer: &str, custom: &CustomRef, specs: &mut Vec<SpecPart>) -> ((Count, Count), (Count, Count)) {
        let (p0, s0) = (self.params.clone(), self.state.clone());
        let (ty, i, o, path) = (&custom.ty, custom.in_width, custom.out_width, custom.path());
        specs.push(SpecPart::Custom {
            specs: quote!(::keras::layers::custom::weight_specs::<#i, #o, #ty, { #path::WEIGHTS.len() }>(#layer, #p0, #s0)),
            len: quote!(#path::WEIGHTS.len()),
        });
        self.params = self.params.add(&custom.trainable());
        self.state = self.state.add(&custom.non_trainable());
        ((p0, self.params.clone()), (s0, self.state.clone()))
    }
}

/// Places the layers' weights in the arenas, in Keras's order.
struct Placer<'m> {
    m: &'m Graph,
    arenas: Arenas,
    constant_specs: Vec<TokenStream>,
    /// Each layer's parameter and state ranges.
    ranges: Vec<((Count, Count), (Count, Count))>,
    weight_specs: Vec<SpecPart>,
}

impl Placer<'_> {
    /// Places layer `u` (the `index`-th of its model) and returns its `LayerSpec` and, for a
    /// model used as a layer, its `SubModelSpec`. A nested model's layers are placed under the
    /// outermost model's name (`layer`), their names joined below it (`path`):
    /// `encoder/dense/kernel`.
    fn layer(&mut self, u: usize, layer: &str, path: Option<&str>, index: usize) -> (TokenStream, Option<TokenStream>) {
        let m = self.m;
        let l = &m.uniques[u];
        let (activity, config, td) = match &l.op {
            Op::Layer(layer) => {
                let prefix = layer.downcast_ref::<TimeDistributed>().map(|td| td.name.as_str());
                (layer.activity_regularizer(), layer.config(l.input.as_deref().unwrap_or(&[])), prefix)
            }
            Op::Merge(Merge::Scale(scale)) => (None, vec![quote!(("scale", ::keras::model::ConfigValue::Float(#scale)))], None),
            Op::Merge(_) => (None, Vec::new(), None),
            Op::Model(sub) => {
                let spec = layer_spec(&l.name, l.class, l.output.as_deref().unwrap_or(&[]), &l.params, None, &[]);
                return (spec, Some(self.model(sub, layer, path, index, &l.name)));
            }
        };
        let prefix = match (path, td) {
            (Some(i), Some(t)) => Some(format!("{i}/{t}")),
            (Some(i), None) => Some(i.to_string()),
            (None, t) => t.map(String::from),
        };
        self.ranges[u] = match &l.custom {
            Some(c) => self.arenas.place_custom(layer, c, &mut self.weight_specs),
            None => self.arenas.place(layer, prefix.as_deref(), &l.weights, &l.constants, &mut self.weight_specs, &mut self.constant_specs),
        };
        (layer_spec(&l.name, l.class, l.output.as_deref().unwrap_or(&[]), &l.params, activity.as_ref(), &config), None)
    }

    /// A model used as a layer, named `name`: its layers' weights in its own Keras order, and
    /// its `SubModelSpec` (its layers, calls and inputs, for Keras's files).
    fn model(&mut self, sub: &Sub, layer: &str, path: Option<&str>, index: usize, name: &str) -> TokenStream {
        let base = sub.base.expect("a model in the order was called");
        let g = &sub.graph;
        let (mut inner_specs, mut inner_subs) = (Vec::new(), Vec::new());
        for ie in &g.order {
            match *ie {
                Entry::Input(_) if g.sequential => {}
                Entry::Input(k) => {
                    let name = g.inputs[k].0.unraw().to_string();
                    inner_specs.push(layer_spec(&name, "InputLayer", &g.inputs[k].1, &Count::known(0), None, &[]));
                }
                Entry::Unique(iu) => {
                    let inner = &self.m.uniques[base + iu].name;
                    let (layer, inner_path) = match path {
                        // The outermost nested model names the weights; each level below adds its name.
                        None => (name.to_string(), inner.clone()),
                        Some(p) => (layer.to_string(), format!("{p}/{inner}")),
                    };
                    let (spec, s) = self.layer(base + iu, &layer, Some(&inner_path), inner_specs.len());
                    inner_specs.push(spec);
                    inner_subs.extend(s);
                }
            }
        }
        let nodes = if g.sequential { Vec::new() } else { node_specs(&g.order, &g.view) };
        let inputs: Vec<TokenStream> = if g.inputs.len() > 1 {
            g.inputs
                .iter()
                .zip(&g.vocab)
                .map(|((ident, shape), v)| {
                    let (name, shape, indices) = (ident.unraw().to_string(), usizes(shape), option(v.map(|n| quote!(#n)).as_ref()));
                    quote!(::keras::model::InputSpec { name: #name, shape: #shape, indices: #indices })
                })
                .collect()
        } else {
            Vec::new()
        };
        let (sequential, input_shape) = (g.sequential, usizes(&g.inputs[0].1));
        quote!(::keras::model::SubModelSpec {
            layer: #index, name: #name, sequential: #sequential, input_shape: #input_shape,
            inputs: &[#(#inputs),*], layers: &[#(#inner_specs),*], nodes: &[#(#nodes),*], submodels: &[#(#inner_subs),*],
        })
    }
}

/// `Model::NODES` of a graph: each call as Keras sees it (a nested model's call is one), its
/// layer and its tensors' layers by their index in `order`.
fn node_specs(order: &[Entry], view: &[ViewNode]) -> Vec<TokenStream> {
    let index_of = |e: Entry| order.iter().position(|o| *o == e).expect("every input and layer is in the order");
    let call_of = |v: usize| view[..v].iter().filter(|w| w.unique == view[v].unique).count();
    view.iter()
        .map(|n| {
            let layer = index_of(Entry::Unique(n.unique));
            let inputs = n.inputs.iter().map(|s| {
                let (l, call) = match *s {
                    Src::Input(k) => (index_of(Entry::Input(k)), 0usize),
                    Src::Node(v) => (index_of(Entry::Unique(view[v].unique)), call_of(v)),
                };
                quote!((#l, #call))
            });
            let output = usizes(&n.output);
            quote!(::keras::model::NodeSpec { layer: #layer, inputs: &[#(#inputs),*], output: #output })
        })
        .collect()
}

/// A `LayerSpec`.
pub fn layer_spec(
    name: &str,
    class: &str,
    output: &[usize],
    params: &Count,
    activity: Option<&TokenStream>,
    config: &[TokenStream],
) -> TokenStream {
    let (shape, activity) = (usizes(output), option(activity));
    quote!(::keras::model::LayerSpec {
        name: #name, class: #class, output_shape: #shape, params: #params, activity_regularizer: #activity, config: &[#(#config),*],
    })
}

/// Everything a model's expansion is made of; [`emit`] writes the struct and impls.
pub struct Emit {
    pub params: Count,
    pub trainable: Count,
    pub non_trainable: Count,
    pub input: TokenStream,
    pub output: TokenStream,
    pub in_size: usize,
    pub out_size: usize,
    pub out_dim: TokenStream,
    /// `Model::Predictions`.
    pub predictions: TokenStream,
    pub layer_names: Vec<String>,
    pub input_element: TokenStream,
    pub input_indices: TokenStream,
    pub predict_one: TokenStream,
    pub layer_specs: Vec<TokenStream>,
    pub weight_specs: Vec<SpecPart>,
    /// `Model::CONSTANTS` entries.
    pub constants: Vec<TokenStream>,
    pub slot_sizes: Vec<TokenStream>,
    pub output_slot: usize,
    pub output_grad_slot: usize,
    pub checks: Vec<TokenStream>,
    pub n_slots: usize,
    pub slot_idents: Vec<Ident>,
    pub forward: Vec<TokenStream>,
    pub backward: Vec<TokenStream>,
    pub activity: Vec<TokenStream>,
    pub grad_scratch: Count,
    /// `Model::NODES` entries (functional models).
    pub nodes: Option<Vec<TokenStream>>,
    /// `Model::SUBMODELS` entries (models used as layers).
    pub submodels: Vec<TokenStream>,
    /// `Model::INPUTS` entries (functional models with several inputs).
    pub inputs: Option<Vec<TokenStream>>,
    /// `Model::OUTPUTS` entries (functional models with several outputs).
    pub outputs: Option<Vec<TokenStream>>,
}

/// Layer calls per generated forward-pass function (see [`emit`]).
const FORWARD_PART: usize = 32;

/// The struct, its inherent consts and constructors, and its `Model` implementation.
pub fn emit(decl: &Decl<'_>, e: &Emit) -> TokenStream {
    let bk = backend_param(decl);
    let Decl { attrs, vis, ident, name } = decl;
    let cpu = quote!(::keras::Cpu);
    let b = quote!(<#bk as ::keras::backend::Device>);
    let Emit {
        params,
        trainable,
        non_trainable,
        input,
        output,
        in_size,
        out_size,
        out_dim,
        predictions,
        layer_names,
        input_element,
        input_indices,
        predict_one,
        layer_specs,
        weight_specs,
        constants,
        slot_sizes,
        output_slot,
        output_grad_slot,
        checks,
        n_slots,
        slot_idents,
        forward,
        backward,
        activity,
        grad_scratch,
        nodes,
        submodels,
        inputs,
        outputs,
    } = e;
    // A large model's forward pass is cut into functions of FORWARD_PART calls each: the borrow
    // checker and LLVM take more than linear time in a function's length.
    let (forward_body, forward_parts) = if forward.len() <= FORWARD_PART {
        (quote! { let [#(#slot_idents),*] = slots; #(#forward)* }, Vec::new())
    } else {
        let names: Vec<Ident> = (0..forward.len().div_ceil(FORWARD_PART)).map(|i| format_ident!("__keras_forward_{}", i)).collect();
        let parts = forward.chunks(FORWARD_PART).zip(&names).map(|(calls, name)| {
            quote! {
                #[doc(hidden)]
                #[inline(never)]
                #[allow(unused_variables)]
                fn #name(
                    ctx: ::keras::layers::Ctx<'_, #bk>,
                    params: &#b::Buffer,
                    state: &mut #b::Buffer,
                    slots: &mut [#b::Buffer; #n_slots],
                    x: #b::View<'_>,
                    batch: usize,
                    training: bool,
                ) {
                    let [#(#slot_idents),*] = slots;
                    #(#calls)*
                }
            }
        });
        let parts: Vec<TokenStream> = parts.collect();
        (quote! { #(Self::#names(ctx, params, state, slots, x, batch, training);)* }, parts)
    };
    // The backward pass likewise.
    let (backward_body, backward_parts) = if backward.len() <= FORWARD_PART {
        (quote! { let [#(#slot_idents),*] = slots; #(#backward)* }, Vec::new())
    } else {
        let names: Vec<Ident> = (0..backward.len().div_ceil(FORWARD_PART)).map(|i| format_ident!("__keras_backward_{}", i)).collect();
        let parts = backward.chunks(FORWARD_PART).zip(&names).map(|(calls, name)| {
            quote! {
                #[doc(hidden)]
                #[inline(never)]
                #[allow(unused_variables, clippy::too_many_arguments)]
                fn #name(
                    ctx: ::keras::layers::Ctx<'_, #bk>,
                    params: &#b::Buffer,
                    grads: &mut #b::Buffer,
                    grad_scratch: &mut #b::Buffer,
                    state: &mut #b::Buffer,
                    slots: &mut [#b::Buffer; #n_slots],
                    x: #b::View<'_>,
                    batch: usize,
                ) {
                    let [#(#slot_idents),*] = slots;
                    #(#calls)*
                }
            }
        });
        let parts: Vec<TokenStream> = parts.collect();
        (quote! { #(Self::#names(ctx, params, grads, grad_scratch, state, slots, x, batch);)* }, parts)
    };
    let weight_specs = weights_const(weight_specs);
    let nodes = nodes.as_ref().map(|c| quote!(const NODES: &'static [::keras::model::NodeSpec] = &[#(#c),*];));
    let submodels = (!submodels.is_empty()).then(|| quote!(const SUBMODELS: &'static [::keras::model::SubModelSpec] = &[#(#submodels),*];));
    let inputs = inputs.as_ref().map(|c| quote!(const INPUTS: &'static [::keras::model::InputSpec] = &[#(#c),*];));
    let outputs = outputs.as_ref().map(|c| quote!(const OUTPUTS: &'static [::keras::model::OutputSpec] = &[#(#c),*];));
    quote! {
        #(#attrs)*
        #vis struct #ident<#bk: ::keras::Backend = #cpu> {
            core: ::keras::model::ModelCore<#bk>,
        }

        const _: () = { #(#checks)* };

        impl<#bk: ::keras::Backend> ::core::fmt::Debug for #ident<#bk> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#ident)).field("device", self.core.device()).finish_non_exhaustive()
            }
        }

        impl #ident<#cpu> {
            /// All parameters, trainable and not (Keras's "Total params").
            pub const PARAMS: usize = #params;
            /// Trainable parameters.
            pub const TRAINABLE_PARAMS: usize = #trainable;
            /// Non-trainable parameters.
            pub const NON_TRAINABLE_PARAMS: usize = #non_trainable;
            /// The per-sample input shape.
            pub const INPUT_SHAPE: &'static [usize] = #input;
            /// The per-sample output shape.
            pub const OUTPUT_SHAPE: &'static [usize] = #output;
            /// The layers' names, in order.
            pub const LAYER_NAMES: &'static [&'static str] = &[#(#layer_names),*];

            #predict_one
        }

        impl<#bk: ::keras::Backend> #ident<#bk> {
            /// A new model on `device`, weights freshly initialized (seeded by
            /// `keras::utils::set_random_seed`).
            ///
            /// # Panics
            /// If the device cannot hold the model; [`Self::try_new`] returns that error instead.
            pub fn new(device: &#bk) -> Self {
                match Self::try_new(device) {
                    ::core::result::Result::Ok(m) => m,
                    ::core::result::Result::Err(e) => ::core::panic!("{}", e),
                }
            }

            /// A new model on `device`, or the device's error.
            pub fn try_new(device: &#bk) -> ::keras::Result<Self> {
                <Self as ::keras::model::Model>::create(device)
            }
        }

        impl<#bk: ::keras::Backend> ::keras::model::Model for #ident<#bk> {
            type Backend = #bk;
            type OutputDim = #out_dim;
            type Predictions = #predictions;
            type InputElement = #input_element;
            const NAME: &'static str = #name;
            const INPUT_SHAPE: &'static [usize] = #input;
            const OUTPUT_SHAPE: &'static [usize] = #output;
            const INPUT_SIZE: usize = #in_size;
            const INPUT_INDICES: ::core::option::Option<usize> = #input_indices;
            const OUTPUT_SIZE: usize = #out_size;
            const PARAMS: usize = #params;
            const TRAINABLE_PARAMS: usize = #trainable;
            const NON_TRAINABLE_PARAMS: usize = #non_trainable;
            const LAYERS: &'static [::keras::model::LayerSpec] = &[#(#layer_specs),*];
            const WEIGHTS: &'static [::keras::model::WeightSpec] = #weight_specs;
            const CONSTANTS: &'static [(usize, &'static [f32])] = &[#(#constants),*];
            const SLOTS: &'static [usize] = &[#(#slot_sizes),*];
            const OUTPUT_SLOT: usize = #output_slot;
            const OUTPUT_GRAD_SLOT: usize = #output_grad_slot;
            const ACTIVITY: &'static [::keras::model::Activity] = &[#(#activity),*];
            const GRAD_SCRATCH: usize = #grad_scratch;
            #nodes
            #submodels
            #inputs
            #outputs

            fn core(&self) -> &::keras::model::ModelCore<#bk> {
                &self.core
            }

            fn core_mut(&mut self) -> &mut ::keras::model::ModelCore<#bk> {
                &mut self.core
            }

            fn from_core(core: ::keras::model::ModelCore<#bk>) -> Self {
                #ident { core }
            }

            fn forward(core: &mut ::keras::model::ModelCore<#bk>, x: #b::View<'_>, batch: usize, training: bool) {
                let ::keras::model::Parts { ctx, params, state, slots, .. } = core.parts::<#n_slots>();
                Self::__keras_forward(ctx, params, state, slots, x, batch, training);
            }

            fn infer(core: &::keras::model::ModelCore<#bk>, ws: &mut ::keras::model::Workspace<#bk>, x: #b::View<'_>, batch: usize) {
                let ::keras::model::InferParts { ctx, params, state, slots } = core.infer_parts::<#n_slots>(ws);
                Self::__keras_forward(ctx, params, state, slots, x, batch, false);
            }

            fn backward(core: &mut ::keras::model::ModelCore<#bk>, x: #b::View<'_>, batch: usize) {
                let ::keras::model::Parts { ctx, params, grads, grad_scratch, state, slots } = core.parts::<#n_slots>();
                let _ = &grad_scratch;
                #backward_body
            }
        }

        impl<#bk: ::keras::Backend> #ident<#bk> {
            /// The forward pass, written once for `Model::forward` (training or not) and
            /// `Model::infer` (a workspace of its own): the layers' calls are the bulk of a
            /// model's code, and each copy is type-checked, borrow-checked and compiled.
            #[doc(hidden)]
            #[inline(never)]
            fn __keras_forward(
                ctx: ::keras::layers::Ctx<'_, #bk>,
                params: &#b::Buffer,
                state: &mut #b::Buffer,
                slots: &mut [#b::Buffer; #n_slots],
                x: #b::View<'_>,
                batch: usize,
                training: bool,
            ) {
                #forward_body
            }
            #(#forward_parts)*
            #(#backward_parts)*
        }
    }
}

/// A stand-in for a model with errors: the same names exist, so the user sees the macro's
/// errors and not others that follow from a missing type.
pub fn stub(decl: &Decl<'_>) -> TokenStream {
    let bk = backend_param(decl);
    let Decl { attrs, vis, ident, name } = decl;
    let cpu = quote!(::keras::Cpu);
    let unreachable = quote!(::core::unreachable!("this model has compile errors"));
    quote! {
        #(#attrs)*
        #vis struct #ident<#bk: ::keras::Backend = #cpu> {
            core: ::keras::model::ModelCore<#bk>,
        }

        impl #ident<#cpu> {
            /// Unknown: the model has errors.
            pub const PARAMS: usize = 0;
            /// Unknown: the model has errors.
            pub const TRAINABLE_PARAMS: usize = 0;
            /// Unknown: the model has errors.
            pub const NON_TRAINABLE_PARAMS: usize = 0;
            /// Unknown: the model has errors.
            pub const INPUT_SHAPE: &'static [usize] = &[];
            /// Unknown: the model has errors.
            pub const OUTPUT_SHAPE: &'static [usize] = &[];
            /// Unknown: the model has errors.
            pub const LAYER_NAMES: &'static [&'static str] = &[];
        }

        impl<#bk: ::keras::Backend> #ident<#bk> {
            /// Unavailable: the model has errors.
            pub fn new(_device: &#bk) -> Self {
                #unreachable
            }
            /// Unavailable: the model has errors.
            pub fn try_new(_device: &#bk) -> ::keras::Result<Self> {
                #unreachable
            }
        }

        impl<#bk: ::keras::Backend> ::keras::model::Model for #ident<#bk> {
            type Backend = #bk;
            type OutputDim = ::keras::ndarray::IxDyn;
            type Predictions = ::keras::ndarray::ArrayD<f32>;
            type InputElement = f32;
            const NAME: &'static str = #name;
            const INPUT_SHAPE: &'static [usize] = &[];
            const OUTPUT_SHAPE: &'static [usize] = &[];
            const INPUT_SIZE: usize = 0;
            const OUTPUT_SIZE: usize = 0;
            const PARAMS: usize = 0;
            const TRAINABLE_PARAMS: usize = 0;
            const NON_TRAINABLE_PARAMS: usize = 0;
            const LAYERS: &'static [::keras::model::LayerSpec] = &[];
            const WEIGHTS: &'static [::keras::model::WeightSpec] = &[];
            const SLOTS: &'static [usize] = &[];
            const OUTPUT_SLOT: usize = 0;
            const OUTPUT_GRAD_SLOT: usize = 0;
            fn core(&self) -> &::keras::model::ModelCore<#bk> {
                &self.core
            }
            fn core_mut(&mut self) -> &mut ::keras::model::ModelCore<#bk> {
                &mut self.core
            }
            fn from_core(core: ::keras::model::ModelCore<#bk>) -> Self {
                #ident { core }
            }
            fn forward(_: &mut ::keras::model::ModelCore<#bk>, _: <#bk as ::keras::backend::Device>::View<'_>, _: usize, _: bool) {
                #unreachable
            }
            fn infer(_: &::keras::model::ModelCore<#bk>, _: &mut ::keras::model::Workspace<#bk>, _: <#bk as ::keras::backend::Device>::View<'_>, _: usize) {
                #unreachable
            }
            fn backward(_: &mut ::keras::model::ModelCore<#bk>, _: <#bk as ::keras::backend::Device>::View<'_>, _: usize) {
                #unreachable
            }
        }
    }
}
