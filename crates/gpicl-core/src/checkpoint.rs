//! The checkpoint file (`.gpicl`): one run's configuration, where training stands, the model's
//! parameters and the optimizer's moments, in one self-describing file that the CLI and the
//! page both read and write.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! b"GPICL-CK"  u32 format  u64 header_len  header (JSON, header_len bytes)  body (f32 values)
//! ```
//!
//! The header lists every tensor (parameter id, shape; for the optimizer also its step count);
//! the body holds their values in that order: each parameter, then each parameter's first and
//! second moments. [`Checkpoint::from_bytes`] checks everything before it allocates: a file
//! that is truncated, oversized, of another format or another model shape, or that holds a
//! value that is not finite, is an error naming what is wrong, never a panic.

use std::collections::{BTreeMap, BTreeSet};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Transaction;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::config::RunConfig;
use crate::model::Transformer;
use crate::optim::Moments;
use crate::train::TrainerState;

/// The first eight bytes of every checkpoint.
pub const MAGIC: &[u8; 8] = b"GPICL-CK";
/// The format this build writes (and the newest it reads).
pub const FORMAT: u32 = 1;
/// The largest header accepted.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;
/// The largest number of f32 values accepted in a body (1 GiB of them).
pub const MAX_VALUES: u64 = 1 << 28;

/// One parameter tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamValues {
    /// The parameter's id (assigned in construction order, see `ModelConfig::init`).
    pub id: u64,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: Vec<f32>,
}

/// One parameter's optimizer state.
#[derive(Debug, Clone, PartialEq)]
pub struct MomentValues {
    /// The parameter's id.
    pub id: u64,
    /// Adam updates applied so far.
    pub time: u32,
    /// First moment, flattened.
    pub m: Vec<f32>,
    /// Second moment, flattened.
    pub v: Vec<f32>,
}

/// A run at one step: enough to continue training exactly, or to evaluate the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The run's configuration.
    pub config: RunConfig,
    /// Steps completed and the training stream's position.
    pub state: TrainerState,
    /// What wrote it: gpicl's version and the backend, e.g. "gpicl 0.1.0, webgpu".
    pub written_by: String,
    /// The model's parameters.
    pub params: Vec<ParamValues>,
    /// The optimizer's state (empty in a model-only checkpoint).
    pub moments: Vec<MomentValues>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    written_by: String,
    config: RunConfig,
    state: TrainerState,
    params: Vec<ParamHeader>,
    moments: Vec<MomentHeader>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamHeader {
    id: u64,
    shape: Vec<usize>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MomentHeader {
    id: u64,
    time: u32,
}

fn bad<T>(message: impl Into<String>) -> Result<T, Error> {
    Err(Error::Checkpoint(message.into()))
}

impl Checkpoint {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = Header {
            written_by: self.written_by.clone(),
            config: self.config.clone(),
            state: self.state.clone(),
            params: self
                .params
                .iter()
                .map(|p| ParamHeader {
                    id: p.id,
                    shape: p.shape.clone(),
                })
                .collect(),
            moments: self
                .moments
                .iter()
                .map(|m| MomentHeader {
                    id: m.id,
                    time: m.time,
                })
                .collect(),
        };
        let header = serde_json::to_vec(&header).expect("a header always serialises");
        let values = self.params.iter().map(|p| p.values.len()).sum::<usize>()
            + self.moments.iter().map(|m| 2 * m.m.len()).sum::<usize>();
        let mut out = Vec::with_capacity(20 + header.len() + 4 * values);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        let body = self
            .params
            .iter()
            .map(|p| &p.values)
            .chain(self.moments.iter().flat_map(|m| [&m.m, &m.v].into_iter()));
        for values in body {
            for x in values {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    /// Reads and checks a checkpoint file: its format, header, configuration and the size of
    /// every tensor against the configured model.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return bad("not a gpicl checkpoint (it should start with \"GPICL-CK\")");
        }
        let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if format != FORMAT {
            return bad(format!(
                "checkpoint format {format}, but this version of gpicl reads format {FORMAT}"
            ));
        }
        let header_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        if header_len > MAX_HEADER_BYTES || header_len > (bytes.len() - 20) as u64 {
            return bad(format!(
                "the header claims {header_len} bytes, but the file has {} after the first 20",
                bytes.len() - 20
            ));
        }
        let body = &bytes[20 + header_len as usize..];
        let header: Header = serde_json::from_slice(&bytes[20..20 + header_len as usize])
            .map_err(|e| Error::Checkpoint(format!("header: {e}")))?;
        header.config.validate()?;
        check_params(&header.config, &header.params)?;
        let sizes: BTreeMap<u64, u64> = header
            .params
            .iter()
            .map(|p| (p.id, p.shape.iter().map(|&d| d as u64).product()))
            .collect();
        let mut seen = BTreeSet::new();
        for m in &header.moments {
            if !sizes.contains_key(&m.id) || !seen.insert(m.id) {
                return bad(format!(
                    "optimizer state for parameter {}, which the model lacks or lists twice",
                    m.id
                ));
            }
            if m.time == 0 {
                return bad(format!("optimizer state of parameter {} at step 0", m.id));
            }
            if m.time != header.moments[0].time {
                return bad(format!(
                    "optimizer state of parameter {} at step {}, of parameter {} at step {}",
                    m.id, m.time, header.moments[0].id, header.moments[0].time
                ));
            }
        }
        let values: u64 = sizes.values().sum::<u64>()
            + header.moments.iter().map(|m| 2 * sizes[&m.id]).sum::<u64>();
        if values > MAX_VALUES || 4 * values != body.len() as u64 {
            return bad(format!(
                "the header describes {} bytes of values, but {} follow it (truncated or \
                 padded file)",
                4 * values,
                body.len()
            ));
        }
        let floats: Vec<f32> = body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        if let Some(i) = floats.iter().position(|x| !x.is_finite()) {
            return bad(format!(
                "value {i} of the body is not a finite number (a checkpoint of a diverged run?)"
            ));
        }
        let mut rest = floats.as_slice();
        let mut take = |n: u64| -> Vec<f32> {
            let (head, tail) = rest.split_at(n as usize);
            rest = tail;
            head.to_vec()
        };
        let params = header
            .params
            .into_iter()
            .map(|p| ParamValues {
                values: take(sizes[&p.id]),
                id: p.id,
                shape: p.shape,
            })
            .collect();
        let moments = header
            .moments
            .into_iter()
            .map(|m| MomentValues {
                m: take(sizes[&m.id]),
                v: take(sizes[&m.id]),
                id: m.id,
                time: m.time,
            })
            .collect();
        Ok(Checkpoint {
            config: header.config,
            state: header.state,
            written_by: header.written_by,
            params,
            moments,
        })
    }

    /// The model with these parameters, on `device`.
    pub fn model(&self, device: &Device) -> Result<Transformer, Error> {
        let model = self.config.model.init(0, device)?;
        load_params(model, &self.params, device)
    }

    /// The optimizer state as device tensors, by parameter id.
    pub fn moments(&self, device: &Device) -> BTreeMap<u64, Moments> {
        let device = device.clone().without_autodiff();
        let tensor =
            |v: &Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
        self.moments
            .iter()
            .map(|m| {
                (
                    m.id,
                    Moments {
                        time: m.time,
                        m: tensor(&m.m),
                        v: tensor(&m.v),
                    },
                )
            })
            .collect()
    }
}

/// `model`'s parameters in order: id, shape, and the values flattened (on the inner device).
fn params(model: &Transformer) -> Vec<(u64, Vec<usize>, Tensor<1>)> {
    struct Collect(Vec<(u64, Vec<usize>, Tensor<1>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let dims = t.dims();
            let n = dims.iter().product::<usize>();
            self.0
                .push((param.id.val(), dims.to_vec(), t.inner().reshape([n])));
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

/// `model`'s parameter ids, in the order [`read_values`] lists the parameters.
pub(crate) fn param_ids(model: &Transformer) -> Vec<u64> {
    params(model).into_iter().map(|(id, _, _)| id).collect()
}

/// Checks that `params` hold as many values as `config`'s model has parameters, each id once,
/// without building the model (ids and shapes are checked when they are loaded into it).
fn check_params(config: &RunConfig, params: &[ParamHeader]) -> Result<(), Error> {
    let mut ids = BTreeSet::new();
    let mut total: u64 = 0;
    for p in params {
        if !ids.insert(p.id) {
            return bad(format!("parameter {} is listed twice", p.id));
        }
        let n = p
            .shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
            .filter(|&n| n <= MAX_VALUES);
        total = match n.and_then(|n| total.checked_add(n)) {
            Some(t) if t <= MAX_VALUES => t,
            _ => return bad(format!("parameter {} is too large: {:?}", p.id, p.shape)),
        };
    }
    let expected = config.model.param_count() as u64;
    if total != expected {
        return bad(format!(
            "the checkpoint holds {total} parameter values, but its configured model has \
             {expected}"
        ));
    }
    Ok(())
}

/// Sets `model`'s parameters to `params` (matched by id; shapes must agree).
pub fn load_params(
    model: Transformer,
    params: &[ParamValues],
    device: &Device,
) -> Result<Transformer, Error> {
    let by_id: BTreeMap<u64, &ParamValues> = params.iter().map(|p| (p.id, p)).collect();
    for (id, shape, _) in self::params(&model) {
        match by_id.get(&id) {
            Some(p) if p.shape == shape => {}
            _ => {
                return bad(format!(
                    "no parameter {id} of shape {shape:?} in the checkpoint"
                ));
            }
        }
    }
    struct Load<'a> {
        by_id: BTreeMap<u64, &'a ParamValues>,
        device: Device,
    }
    impl ModuleMapper for Load<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let p = self.by_id[&id.val()];
            let grad = tensor.is_require_grad();
            let data = TensorData::new(p.values.clone(), tensor.dims());
            let tensor = Tensor::<D>::from_data(data, &self.device).set_require_grad(grad);
            Param::from_mapped_value(id, tensor, mapper)
        }
    }
    Ok(model.map(&mut Load {
        by_id,
        device: device.clone(),
    }))
}

/// Reads `model`'s parameters and `moments` from the device in one asynchronous round trip
/// (the browser's way; natively, block on it).
pub async fn read_values(
    model: &Transformer,
    moments: &BTreeMap<u64, Moments>,
) -> Result<(Vec<ParamValues>, Vec<MomentValues>), Error> {
    let collected = params(model);
    let mut tx = Transaction::default();
    for (_, _, t) in &collected {
        tx = tx.register(t.clone());
    }
    for m in moments.values() {
        tx = tx.register(m.m.clone()).register(m.v.clone());
    }
    let data = tx
        .execute_async()
        .await
        .map_err(|e| Error::Device(format!("reading the model: {e:?}")))?;
    let mut data = data.into_iter().map(|d| {
        d.try_into_vec::<f32>()
            .map_err(|e| Error::Device(format!("model data: {e:?}")))
    });
    let mut next = || {
        data.next()
            .unwrap_or_else(|| Err(Error::Device("short read".into())))
    };
    let mut params = Vec::with_capacity(collected.len());
    for (id, shape, _) in collected {
        params.push(ParamValues {
            id,
            shape,
            values: next()?,
        });
    }
    let mut out = Vec::with_capacity(moments.len());
    for (&id, m) in moments {
        out.push(MomentValues {
            id,
            time: m.time,
            m: next()?,
            v: next()?,
        });
    }
    Ok((params, out))
}
