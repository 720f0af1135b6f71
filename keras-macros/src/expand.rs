//! Code generation: the model struct, its consts, and straight-line forward/backward passes over
//! the runtime's layer types, every dimension and offset a literal.

use crate::catalog::Weight;
use crate::check::{Checked, check};
use crate::diag::Diag;
use crate::parse::{Input, parse};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Attribute, Visibility};

/// `sequential!`: parse, check, expand; every error becomes a spanned `compile_error!`.
pub fn sequential(tokens: TokenStream) -> TokenStream {
    let input = match parse(tokens) {
        Ok(i) => i,
        Err(e) => return e.to_compile_error(),
    };
    match input {
        Input::Items(items) => items
            .iter()
            .map(|item| {
                let mut diag = Diag::default();
                for e in &item.bad_params {
                    diag.push(e.clone());
                }
                let name = snake_case(&item.name.to_string());
                let checked = check(&item.chain, item.params.as_ref(), &item.name.to_string(), &mut diag);
                let decl = Decl { attrs: &item.attrs, vis: &item.vis, ident: &item.name, name };
                match checked {
                    Some(m) if diag.is_empty() => model(&decl, &m),
                    _ => {
                        let errors = diag.to_compile_errors();
                        let stub = stub(&decl);
                        quote!(#errors #stub)
                    }
                }
            })
            .collect(),
        Input::Expr(chain) => {
            let mut diag = Diag::default();
            let ident = Ident::new("Sequential", Span::call_site());
            let vis = Visibility::Inherited;
            let decl = Decl { attrs: &[], vis: &vis, ident: &ident, name: "sequential".to_string() };
            let body = match check(&chain, None, "sequential", &mut diag) {
                Some(m) if diag.is_empty() => model(&decl, &m),
                _ => {
                    let errors = diag.to_compile_errors();
                    let stub = stub(&decl);
                    quote!(#errors #stub)
                }
            };
            quote!({
                #body
                #ident::<::keras::Cpu>::new(&::keras::Cpu::new())
            })
        }
    }
}

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

/// The struct, its inherent consts and constructors, and its `Model` implementation.
pub fn model(decl: &Decl<'_>, m: &Checked) -> TokenStream {
    let bk = backend_param(decl);
    let cpu = quote!(::keras::Cpu);
    let n = m.layers.len();
    let input = usizes(&m.input);
    let output_shape = &m.layers[n - 1].output;
    let output = usizes(output_shape);
    let in_size: usize = m.input.iter().product();
    let out_size: usize = output_shape.iter().product();
    let (params, trainable, non_trainable) = (m.params(), m.trainable.clone(), m.non_trainable.clone());
    let out_dim = match output_shape.len() + 1 {
        r @ 2..=6 => {
            let ix = format_ident!("Ix{}", r);
            quote!(::keras::ndarray::#ix)
        }
        _ => quote!(::keras::ndarray::IxDyn),
    };

    // Arena offsets, in Keras weight order; the constants after the non-trainable weights.
    let mut arenas = Arenas::new(non_trainable.clone());
    let mut weight_specs = Vec::new();
    let mut constant_specs = Vec::new();
    let mut param_ranges = Vec::new();
    let mut state_ranges = Vec::new();
    for l in &m.layers {
        let (p, s) = match &l.custom {
            Some(c) => arenas.place_custom(&l.name, c, &mut weight_specs),
            None => arenas.place(&l.name, l.weight_prefix.as_deref(), &l.weights, &l.constants, &mut weight_specs, &mut constant_specs),
        };
        param_ranges.push(p);
        state_ranges.push(s);
    }
    let layer_specs =
        m.layers.iter().map(|l| layer_spec(&l.name, l.class, &l.output, &l.params, l.activity_regularizer.as_ref(), &l.config));

    // Workspace slots: layer i's output is 2i, its scratch 2i + 1, the gradient of its output 2n + i.
    let slot = |i: usize| format_ident!("s{}", i);
    let slot_idents: Vec<Ident> = (0..3 * n).map(slot).collect();
    let n_slots = 3 * n;
    let mut slot_sizes: Vec<TokenStream> = Vec::new();
    for l in &m.layers {
        let out: usize = l.output.iter().product();
        let (ty, r) = (&l.runtime.ty, l.runtime.rows_per_sample);
        slot_sizes.push(quote!(#out));
        slot_sizes.push(quote!((<#ty>::SCRATCH * #r)));
    }
    for l in &m.layers {
        let out: usize = l.output.iter().product();
        slot_sizes.push(quote!(#out));
    }
    let (output_slot, output_grad_slot) = (2 * (n - 1), 3 * n - 1);

    let b = quote!(<#bk as ::keras::backend::Device>);
    let mut forward = Vec::new();
    let mut backward = Vec::new();
    let mut infer = Vec::new();
    let mut infer_buffers = Vec::new();
    let mut infer_sizes = Vec::new();
    let mut checks = m.asserts.clone();
    for (i, l) in m.layers.iter().enumerate() {
        let rt = &l.runtime;
        let (ty, r, iw, ow) = (&rt.ty, rt.rows_per_sample, rt.in_width, rt.out_width);
        let (p0, p1) = &param_ranges[i];
        let (s0, s1) = &state_ranges[i];
        let params_here = match &l.custom {
            Some(c) => c.trainable(),
            None => Count::known(p1.known - p0.known),
        };
        checks.extend(l.checks.iter().cloned());
        // (A custom layer's count is its impl's, as its runtime type's: nothing to compare.)
        if l.custom.is_none() {
            checks.push(quote!(::core::assert!(<#ty>::PARAMS == #params_here);));
        }
        let (out, scratch, grad) = (slot(2 * i), slot(2 * i + 1), slot(2 * n + i));
        let out_len: usize = l.output.iter().product();
        let x_view = if i == 0 {
            quote!(#b::shorten(&x))
        } else {
            let prev = slot(2 * (i - 1));
            quote!(::keras::model::all::<#bk>(#prev))
        };
        forward.push(forward_call(
            &quote!(#bk),
            rt,
            quote!(#b::view(params, #p0..#p1)),
            quote!(#b::view_mut(state, #s0..#s1)),
            quote!(::keras::layers::Rows::<#bk, #iw>::new(#x_view, batch * #r)),
            quote!(::keras::layers::RowsMut::<#bk, #ow>::new(::keras::model::all_mut::<#bk>(#out), batch * #r)),
            quote!(::keras::model::all_mut::<#bk>(#scratch)),
            quote!(training),
        ));
        let dx = if i == 0 {
            quote!(::core::option::Option::None::<::keras::layers::RowsMut<'_, #bk, #iw>>)
        } else {
            let prev_grad = slot(2 * n + i - 1);
            quote!(::core::option::Option::Some(::keras::layers::RowsMut::<#bk, #iw>::new(::keras::model::all_mut::<#bk>(#prev_grad), batch * #r)))
        };
        // A penalty on the layer's output adds its gradient (of the penalty over the batch
        // size, as Keras scales it) to the gradient arriving from above.
        let activity = l.activity_regularizer.as_ref().map(|reg| {
            quote! {
                ::keras::backend::ObjectiveOps::regularize(
                    ctx.device,
                    &#reg.scaled(1.0 / batch as f32),
                    #b::sub(::keras::model::all::<#bk>(#out), 0..batch * #out_len),
                    ::core::option::Option::Some(#b::split_mut(::keras::model::all_mut::<#bk>(#grad), batch * #out_len).0),
                    0.0,
                    ::core::option::Option::None,
                );
            }
        });
        let call = backward_call(
            rt,
            [
                quote!(#b::view(params, #p0..#p1)),
                quote!(#b::view_mut(grads, #p0..#p1)),
                quote!(#b::view(state, #s0..#s1)),
                quote!(::keras::layers::Rows::<#bk, #iw>::new(#x_view, batch * #r)),
                quote!(::keras::layers::Rows::<#bk, #ow>::new(::keras::model::all::<#bk>(#out), batch * #r)),
                quote!(::keras::model::all_mut::<#bk>(#scratch)),
                quote!(::keras::layers::RowsMut::<#bk, #ow>::new(::keras::model::all_mut::<#bk>(#grad), batch * #r)),
                dx,
            ],
        );
        backward.push(quote! {
            #activity
            #call
        });
        // One sample on the CPU: activations and scratch (a convolution's patches) carved out of
        // one per-thread buffer (a convnet's or a long sequence's would overflow the stack).
        let a = format_ident!("a{}", i);
        let sc = format_ident!("scratch{}", i);
        infer_sizes.push(quote!(#out_len + <#ty>::SCRATCH * #r));
        infer_buffers.push(quote! {
            let (#a, buf) = buf.split_at_mut(#out_len);
            let (#sc, buf) = buf.split_at_mut(<#ty>::SCRATCH * #r);
        });
        let x_in = if i == 0 {
            quote!(&x[..])
        } else {
            let prev = format_ident!("a{}", i - 1);
            quote!(&#prev[..])
        };
        infer.push(forward_call(
            &cpu,
            rt,
            quote!(&params[#p0..#p1]),
            quote!(&mut state[#s0..#s1]),
            quote!(::keras::layers::Rows::<#cpu, #iw>::new(#x_in, #r)),
            quote!(::keras::layers::RowsMut::<#cpu, #ow>::new(&mut #a[..], #r)),
            quote!(&mut #sc[..]),
            quote!(false),
        ));
    }
    let last = format_ident!("a{}", n - 1);
    backward.reverse();

    let body = infer_body(&arenas.state_len(), &infer_sizes, &infer_buffers, &infer, &last, out_size);
    let (input_element, input_indices, predict_one) = match m.input_indices {
        None => (
            quote!(f32),
            quote!(::core::option::Option::None),
            quote! {
                /// Runs one sample through the model on the CPU (inference mode), without allocating
                /// after the first call on a thread: activations live in a per-thread buffer that is
                /// reused. For a sample in a `Vec` or an array's row, see
                /// [`Self::predict_one_slice`]; a large literal (`&[0.0; 150528]`) makes rustc slow,
                /// where a `Vec` does not.
                #[inline]
                pub fn predict_one(&self, x: &[f32; #in_size]) -> [f32; #out_size] {
                    #body
                }

                /// [`Self::predict_one`] of a sample given as a slice, flat in row-major order (a
                /// `Vec`, an image's pixels): an error, not a panic, when its length is not the
                /// model's input size, and a NaN or infinity is refused as `predict` refuses it.
                #[inline]
                pub fn predict_one_slice(&self, x: &[f32]) -> ::keras::Result<[f32; #out_size]> {
                    let sample: &[f32; #in_size] = x.try_into().map_err(|_| {
                        ::keras::Error::value(
                            "predict_one_slice: the sample",
                            ::std::format!("{} values (one sample of {})", #in_size, ::keras::error::batch_shape(Self::INPUT_SHAPE)),
                            ::std::format!("{} values", x.len()),
                        )
                    })?;
                    if let ::core::option::Option::Some((index, &value)) = sample.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                        return ::core::result::Result::Err(::keras::Error::NonFinite { what: "predict_one_slice: the sample".into(), value, index });
                    }
                    ::core::result::Result::Ok(self.predict_one(sample))
                }
            },
        ),
        Some(vocab) => (
            quote!(i32),
            quote!(::core::option::Option::Some(#vocab)),
            quote! {
                /// Runs one sample of ids through the model on the CPU (inference mode), without
                /// allocating after the first call on a thread (activations live in a per-thread
                /// buffer that is reused). An id outside `[0, input_dim)` of the
                /// Embedding is an error naming its position.
                #[inline]
                pub fn predict_one(&self, ids: &[i32; #in_size]) -> ::keras::Result<[f32; #out_size]> {
                    let mut x = [0f32; #in_size];
                    for (i, (&id, v)) in ids.iter().zip(x.iter_mut()).enumerate() {
                        if id < 0 || id as usize >= #vocab {
                            return ::core::result::Result::Err(::keras::Error::value(
                                ::std::format!("token id at position {}", i),
                                ::std::format!("an integer in [0, {}) (the Embedding's input_dim is {})", #vocab, #vocab),
                                id,
                            ));
                        }
                        *v = id as f32;
                    }
                    ::core::result::Result::Ok({ #body })
                }
            },
        ),
    };

    let activity = m.layers.iter().enumerate().filter_map(|(i, l)| {
        let reg = l.activity_regularizer.as_ref()?;
        let (slot, len) = (2 * i, l.output.iter().product::<usize>());
        Some(quote!(::keras::model::Activity { slot: #slot, len: #len, regularizer: #reg }))
    });
    let e = Emit {
        params,
        trainable,
        non_trainable,
        input,
        output,
        in_size,
        out_size,
        out_dim,
        layer_names: m.layers.iter().map(|l| l.name.clone()).collect(),
        input_element,
        input_indices,
        predict_one,
        layer_specs: layer_specs.collect(),
        weight_specs,
        constants: constant_specs,
        slot_sizes,
        output_slot,
        output_grad_slot,
        checks,
        n_slots,
        slot_idents,
        forward,
        backward,
        activity: activity.collect(),
        grad_scratch: Count::known(0),
        nodes: None,
        inputs: None,
    };
    emit(decl, &e)
}

/// The body of `predict_one`, evaluating to the output array: the state (`state_len` floats,
/// constants included) copied into the per-thread buffer, each layer's activations and scratch
/// carved out of it (`buffers`, of `sizes`), the layers run (`steps`), the output (`last`)
/// copied out.
pub fn infer_body(
    state_len: &Count,
    sizes: &[TokenStream],
    buffers: &[TokenStream],
    steps: &[TokenStream],
    last: &Ident,
    out_size: usize,
) -> TokenStream {
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
            let mut out = [0f32; #out_size];
            out.copy_from_slice(&#last[..#out_size]);
            out
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
    /// `Model::INPUTS` entries (functional models with several inputs).
    pub inputs: Option<Vec<TokenStream>>,
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
        inputs,
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
    let inputs = inputs.as_ref().map(|c| quote!(const INPUTS: &'static [::keras::model::InputSpec] = &[#(#c),*];));
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
            #inputs

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
