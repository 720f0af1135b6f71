//! Images in: `keras.utils.load_img` and `img_to_array`, on the `image` crate's PNG and JPEG
//! decoders, with Pillow's conversions and resampling (what Keras's `load_img` calls), so a PNG
//! loads to the same pixels as in Python Keras.

use crate::{Error, Result};
use ndarray::Array3;
use std::path::Path;

/// The channels `load_img` returns, as Keras's `color_mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorMode {
    /// Three channels (`"rgb"`, the default); an alpha channel is dropped.
    #[default]
    Rgb,
    /// Four channels (`"rgba"`); opaque where the file has no alpha.
    Rgba,
    /// One channel (`"grayscale"`): Pillow's luma, `(299 R + 587 G + 114 B) / 1000`.
    Grayscale,
}

/// How `load_img` resizes to `target_size`, as Keras's `interpolation` (Pillow's filters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Interpolation {
    /// The pixel whose area holds the output pixel's center (`"nearest"`, Keras's default).
    #[default]
    Nearest,
    /// A triangle filter as wide as the scale when shrinking (`"bilinear"`, Pillow's, with its
    /// 8-bit fixed-point arithmetic).
    Bilinear,
}

/// `load_img`'s options, Keras's keyword arguments.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadImg {
    /// The channels.
    pub color_mode: ColorMode,
    /// `(height, width)` to resize to; `None` keeps the file's size.
    pub target_size: Option<(usize, usize)>,
    /// The filter of the resize.
    pub interpolation: Interpolation,
}

impl LoadImg {
    /// The channels.
    pub fn color_mode(mut self, mode: ColorMode) -> Self {
        self.color_mode = mode;
        self
    }

    /// Resizes to `height x width`.
    pub fn target_size(mut self, height: usize, width: usize) -> Self {
        self.target_size = Some((height, width));
        self
    }

    /// The resize's filter.
    pub fn interpolation(mut self, interpolation: Interpolation) -> Self {
        self.interpolation = interpolation;
        self
    }
}

/// An image as `load_img` returns it: 8-bit pixels, rows of `width` pixels of `channels`
/// values, top row first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Rows.
    pub height: usize,
    /// Pixels per row.
    pub width: usize,
    /// Values per pixel: 1, 3 or 4.
    pub channels: usize,
    /// `height * width * channels` values.
    pub pixels: Vec<u8>,
}

/// Loads a PNG, JPEG, BMP or GIF file, as `keras.utils.load_img(path, color_mode, target_size,
/// interpolation)`: converted to `color_mode` and resized to `target_size` as Pillow does.
/// A missing, damaged or unsupported file is an error naming it.
///
/// ```no_run
/// use keras_runtime::utils::{LoadImg, img_to_array, load_img};
///
/// let img = load_img("cat.jpg", LoadImg::default().target_size(224, 224))?;
/// let x = img_to_array(&img); // (224, 224, 3), values in [0, 255]
/// # Ok::<(), keras_runtime::Error>(())
/// ```
pub fn load_img(path: impl AsRef<Path>, args: LoadImg) -> Result<Image> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: shown.clone(), source })?;
    let decoded = ::image::load_from_memory(&bytes).map_err(|e| Error::Format {
        path: shown.clone(),
        message: format!("not an image keras-rs can read (PNG, JPEG, BMP or GIF): {e}"),
    })?;
    let (width, height) = (decoded.width() as usize, decoded.height() as usize);
    let has_alpha = decoded.color().has_alpha();
    let rgba = decoded.into_rgba8().into_raw();
    let mut img = convert(&rgba, width, height, has_alpha, args.color_mode);
    if let Some((h, w)) = args.target_size {
        if h == 0 || w == 0 {
            return Err(Error::value("load_img target_size", "a height and a width of at least 1", format!("({h}, {w})")));
        }
        if (h, w) != (img.height, img.width) {
            img = match args.interpolation {
                Interpolation::Nearest => nearest(&img, h, w),
                // Pillow filters RGBA with the colors premultiplied by alpha.
                Interpolation::Bilinear if img.channels == 4 => unpremultiply(bilinear(&premultiply(img), h, w)),
                Interpolation::Bilinear => bilinear(&img, h, w),
            };
        }
    }
    Ok(img)
}

/// `(height, width, channels)` float values of an image, as `keras.utils.img_to_array`.
pub fn img_to_array(img: &Image) -> Array3<f32> {
    Array3::from_shape_vec((img.height, img.width, img.channels), img.pixels.iter().map(|&v| v as f32).collect())
        .expect("an image holds height * width * channels values")
}

/// RGBA pixels in `mode`, as Pillow's `convert("RGB" | "RGBA" | "L")`.
fn convert(rgba: &[u8], width: usize, height: usize, has_alpha: bool, mode: ColorMode) -> Image {
    let pixels = rgba.chunks_exact(4);
    let pixels: Vec<u8> = match mode {
        ColorMode::Rgba => {
            if has_alpha {
                rgba.to_vec()
            } else {
                pixels.flat_map(|p| [p[0], p[1], p[2], 255]).collect()
            }
        }
        ColorMode::Rgb => pixels.flat_map(|p| [p[0], p[1], p[2]]).collect(),
        // Pillow's L = R * 299/1000 + G * 587/1000 + B * 114/1000, in 16-bit fixed point.
        ColorMode::Grayscale => {
            pixels.map(|p| ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8).collect()
        }
    };
    let channels = match mode {
        ColorMode::Rgb => 3,
        ColorMode::Rgba => 4,
        ColorMode::Grayscale => 1,
    };
    Image { height, width, channels, pixels }
}

/// Pillow's nearest-neighbour resize (`ImagingScaleAffine`): the source position starts at half
/// a step and adds the step `in / out` per output pixel, in double precision as Pillow adds it
/// (so a position that lands on a pixel border rounds as Pillow's does).
fn nearest(img: &Image, height: usize, width: usize) -> Image {
    let c = img.channels;
    let positions = |n_in: usize, n_out: usize| -> Vec<usize> {
        let step = n_in as f64 / n_out as f64;
        let mut at = step * 0.5;
        (0..n_out)
            .map(|_| {
                let i = (at as usize).min(n_in - 1);
                at += step;
                i
            })
            .collect()
    };
    let (xs, ys) = (positions(img.width, width), positions(img.height, height));
    let mut pixels = Vec::with_capacity(height * width * c);
    for &iy in &ys {
        for &ix in &xs {
            let at = (iy * img.width + ix) * c;
            pixels.extend_from_slice(&img.pixels[at..at + c]);
        }
    }
    Image { height, width, channels: c, pixels }
}

/// Pillow's precision of 8-bit resampling coefficients.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's coefficients for resampling `in_size` values to `out_size` with the triangle
/// filter (`precompute_coeffs` and `normalize_coeffs_8bpc` of its Resample.c): per output value,
/// the first input and the fixed-point weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the triangle's support is 1
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let inv_filterscale = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = (((center + support + 0.5) as i64).min(in_size as i64) as usize).max(xmin);
            let mut k: Vec<f64> = (xmin..xmax)
                .map(|x| {
                    let t = ((x as f64 - center + 0.5) * inv_filterscale).abs();
                    if t < 1.0 { 1.0 - t } else { 0.0 }
                })
                .collect();
            let total: f64 = k.iter().sum();
            if total != 0.0 {
                for w in &mut k {
                    *w /= total;
                }
            }
            let fixed = k
                .iter()
                .map(|&w| {
                    let v = w * (1u64 << PRECISION_BITS) as f64;
                    if v < 0.0 { (v - 0.5) as i64 } else { (v + 0.5) as i64 }
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

/// A fixed-point sum back to 8 bits, rounded and clamped as Pillow's `clip8`.
fn clip8(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's bilinear resize of 8-bit images: a horizontal and a vertical pass, each back to 8
/// bits, the vertical one first when the height shrinks more than twice as much as the width
/// (Pillow 13's order).
fn bilinear(img: &Image, height: usize, width: usize) -> Image {
    let (dh, dw) = (img.height as i64 - height as i64, img.width as i64 - width as i64);
    let vertical_first = dh > 0 && dh > dw * 2;
    if vertical_first { horizontal(&vertical(img, height), width) } else { vertical(&horizontal(img, width), height) }
}

/// Pillow's horizontal pass to `width` pixels per row.
fn horizontal(img: &Image, width: usize) -> Image {
    if width == img.width {
        return img.clone();
    }
    let c = img.channels;
    let half = 1i64 << (PRECISION_BITS - 1);
    let kx = coefficients(img.width, width);
    let mut pixels = Vec::with_capacity(img.height * width * c);
    for y in 0..img.height {
        let row = &img.pixels[y * img.width * c..(y + 1) * img.width * c];
        for (xmin, k) in &kx {
            for ch in 0..c {
                let sum = k.iter().enumerate().fold(half, |s, (i, &w)| s + row[(xmin + i) * c + ch] as i64 * w);
                pixels.push(clip8(sum));
            }
        }
    }
    Image { height: img.height, width, channels: c, pixels }
}

/// Pillow's vertical pass to `height` rows.
fn vertical(img: &Image, height: usize) -> Image {
    if height == img.height {
        return img.clone();
    }
    let half = 1i64 << (PRECISION_BITS - 1);
    let ky = coefficients(img.height, height);
    let stride = img.width * img.channels;
    let mut pixels = Vec::with_capacity(height * stride);
    for (ymin, k) in &ky {
        for x in 0..stride {
            let sum = k.iter().enumerate().fold(half, |s, (i, &w)| s + img.pixels[(ymin + i) * stride + x] as i64 * w);
            pixels.push(clip8(sum));
        }
    }
    Image { height, width: img.width, channels: img.channels, pixels }
}

/// Pillow's RGBA to RGBa: each color times alpha / 255, rounded (`MULDIV255`).
fn premultiply(mut img: Image) -> Image {
    for p in img.pixels.chunks_exact_mut(4) {
        let a = p[3] as u32;
        for v in &mut p[..3] {
            let t = *v as u32 * a + 128;
            *v = ((t + (t >> 8)) >> 8) as u8;
        }
    }
    img
}

/// Pillow's RGBa to RGBA: each color times 255 / alpha (0 where alpha is 0 or 255 as it is).
fn unpremultiply(mut img: Image) -> Image {
    for p in img.pixels.chunks_exact_mut(4) {
        let a = p[3] as u32;
        if a != 0 && a != 255 {
            for v in &mut p[..3] {
                *v = (255 * *v as u32 / a).min(255) as u8;
            }
        }
    }
    img
}
