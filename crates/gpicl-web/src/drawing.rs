//! A drawing made into an input the learner can read, the way MNIST's digits were made (LeCun et
//! al.): the ink's bounding box scaled, keeping its aspect ratio, so its longer side is 20 px,
//! then placed in a 28×28 image with its centre of mass at the centre; values 0–255. From there
//! the training images' own pipeline: average-pooled as the learner's data was, then normalised
//! with the training set's statistics.

use gpicl_core::Dataset;
use gpicl_core::manifest::InputStats;

/// Side of an MNIST image.
pub const SIDE: usize = 28;
/// Side of the box the ink is scaled into.
const INK_BOX: usize = 20;
/// Ink below this (of 1) counts as background when finding the bounding box.
const THRESHOLD: f32 = 0.05;

/// The 28×28 MNIST-style image (row-major, 0–255) of a drawing given as ink values in [0, 1]
/// (`width × height`, row-major); `None` when nothing is drawn.
pub fn to_mnist(ink: &[f32], width: usize, height: usize) -> Option<Vec<f32>> {
    if width == 0 || height == 0 || ink.len() != width * height {
        return None;
    }
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..height {
        for x in 0..width {
            if ink[y * width + x] > THRESHOLD {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            }
        }
    }
    if x0 == usize::MAX {
        return None;
    }
    let (bw, bh) = (x1 - x0, y1 - y0);
    let scale = INK_BOX as f64 / bw.max(bh) as f64;
    let tw = ((bw as f64 * scale).round() as usize).clamp(1, INK_BOX);
    let th = ((bh as f64 * scale).round() as usize).clamp(1, INK_BOX);
    // Area-average the source pixels that fall in each target pixel (at least the nearest one).
    let span = |start: usize, len: usize, target: usize, i: usize| {
        let a = start + i * len / target;
        let b = (start + (i + 1) * len / target).max(a + 1);
        a..b
    };
    let mut small = vec![0.0f32; tw * th];
    for ty in 0..th {
        let ys = span(y0, bh, th, ty);
        for tx in 0..tw {
            let xs = span(x0, bw, tw, tx);
            let n = (ys.len() * xs.len()) as f32;
            let sum: f32 = ys
                .clone()
                .flat_map(|y| xs.clone().map(move |x| ink[y * width + x]))
                .sum();
            small[ty * tw + tx] = (sum / n).clamp(0.0, 1.0);
        }
    }
    // Centre of mass (pixel centres at i + 0.5) to the image's centre.
    let total: f32 = small.iter().sum();
    let (mut cx, mut cy) = (0.0f32, 0.0f32);
    for ty in 0..th {
        for tx in 0..tw {
            let v = small[ty * tw + tx];
            cx += (tx as f32 + 0.5) * v;
            cy += (ty as f32 + 0.5) * v;
        }
    }
    let centre = SIDE as f32 / 2.0;
    let offset =
        |c: f32, len: usize| ((centre - c / total).round().max(0.0) as usize).min(SIDE - len);
    let (ox, oy) = (offset(cx, tw), offset(cy, th));
    let mut out = vec![0.0f32; SIDE * SIDE];
    for ty in 0..th {
        for tx in 0..tw {
            out[(oy + ty) * SIDE + ox + tx] = small[ty * tw + tx] * 255.0;
        }
    }
    Some(out)
}

/// Ink values in [0, 1] from a canvas's RGBA bytes (light strokes on a dark ground: the red
/// channel times the alpha).
pub fn ink_from_rgba(rgba: &[u8]) -> Vec<f32> {
    rgba.chunks_exact(4)
        .map(|p| p[0] as f32 / 255.0 * p[3] as f32 / 255.0)
        .collect()
}

/// A 28×28 MNIST-style image average-pooled by `pool`, as the training images were (raw
/// values, 0–255).
pub fn pooled(mnist: &[f32], pool: usize) -> Result<Vec<f32>, String> {
    let image = Dataset::new("drawing", mnist.to_vec(), SIDE * SIDE, vec![0], Some(SIDE))
        .map_err(|e| e.to_string())?;
    if pool > 1 {
        Ok(image.avg_pool(pool).map_err(|e| e.to_string())?.features)
    } else {
        Ok(image.features)
    }
}

/// `(x - mean) / std` with the training set's statistics.
pub fn normalized(pooled: &[f32], stats: InputStats) -> Vec<f32> {
    pooled
        .iter()
        .map(|v| (v - stats.mean) / stats.std)
        .collect()
}

/// The learner's input for a 28×28 MNIST-style image: [`pooled`], then [`normalized`].
pub fn learner_input(mnist: &[f32], pool: usize, stats: InputStats) -> Result<Vec<f32>, String> {
    Ok(normalized(&pooled(mnist, pool)?, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A canvas with a filled rectangle.
    fn rect(w: usize, h: usize, x: usize, y: usize, rw: usize, rh: usize) -> Vec<f32> {
        let mut ink = vec![0.0; w * h];
        for yy in y..y + rh {
            for xx in x..x + rw {
                ink[yy * w + xx] = 1.0;
            }
        }
        ink
    }

    /// (bounding box width, height, centre of mass x, y) of a 28×28 image.
    fn shape(img: &[f32]) -> (usize, usize, f32, f32) {
        let cols: Vec<usize> = (0..SIDE)
            .filter(|&x| (0..SIDE).any(|y| img[y * SIDE + x] > 0.0))
            .collect();
        let rows: Vec<usize> = (0..SIDE)
            .filter(|&y| (0..SIDE).any(|x| img[y * SIDE + x] > 0.0))
            .collect();
        let total: f32 = img.iter().sum();
        let cx = (0..SIDE * SIDE)
            .map(|i| ((i % SIDE) as f32 + 0.5) * img[i])
            .sum::<f32>()
            / total;
        let cy = (0..SIDE * SIDE)
            .map(|i| ((i / SIDE) as f32 + 0.5) * img[i])
            .sum::<f32>()
            / total;
        (cols.len(), rows.len(), cx, cy)
    }

    #[test]
    fn an_empty_canvas_is_nothing() {
        assert_eq!(to_mnist(&vec![0.0; 280 * 280], 280, 280), None);
        assert_eq!(to_mnist(&[1.0; 3], 2, 2), None);
    }

    #[test]
    fn ink_is_scaled_to_20_pixels_and_centred_by_mass() {
        // A tall bar in the top-left corner of the canvas.
        let img = to_mnist(&rect(280, 280, 10, 5, 60, 100), 280, 280).unwrap();
        let (w, h, cx, cy) = shape(&img);
        assert_eq!(h, 20);
        assert_eq!(w, 12);
        assert!(
            (cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5,
            "{cx} {cy}"
        );
        assert!(img.iter().all(|&v| (0.0..=255.0).contains(&v)));
        assert_eq!(img.iter().copied().fold(0.0, f32::max), 255.0);
    }

    #[test]
    fn the_same_shape_anywhere_at_any_size_gives_the_same_image() {
        // An L: a bar and a foot, drawn small on the left and large on the right.
        let l_shape = |x: usize, y: usize, s: usize| {
            let mut ink = rect(280, 280, x, y, s, 5 * s);
            for (i, v) in rect(280, 280, x, y + 4 * s, 3 * s, s).iter().enumerate() {
                ink[i] = ink[i].max(*v);
            }
            ink
        };
        let a = to_mnist(&l_shape(5, 5, 10), 280, 280).unwrap();
        let b = to_mnist(&l_shape(120, 20, 40), 280, 280).unwrap();
        let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
        assert!(diff < 5.0, "mean difference {diff} of 255");
    }

    #[test]
    fn learner_input_pools_and_normalises() {
        let stats = InputStats {
            mean: 10.0,
            std: 2.0,
        };
        let blank = learner_input(&[0.0; SIDE * SIDE], 4, stats).unwrap();
        assert_eq!(blank.len(), 49);
        assert!(blank.iter().all(|&v| v == -5.0));
        let full = learner_input(&[255.0; SIDE * SIDE], 4, stats).unwrap();
        assert!(full.iter().all(|&v| (v - 122.5).abs() < 1e-4));
        assert_eq!(
            learner_input(&[0.0; SIDE * SIDE], 1, stats).unwrap().len(),
            784
        );
        assert!(learner_input(&[0.0; 10], 4, stats).is_err());
        assert_eq!(
            ink_from_rgba(&[255, 0, 0, 255, 0, 0, 0, 255]),
            vec![1.0, 0.0]
        );
    }
}
