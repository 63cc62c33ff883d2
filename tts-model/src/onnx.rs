//! The subset of the ONNX protobuf schema (`onnx.proto3`) that a Piper voice needs, written by hand
//! with `prost` derives (no protoc). Field numbers follow the ONNX specification; every other field
//! of the real schema is skipped by the decoder. `bytes` fields decode as [`bytes::Bytes`] so that,
//! when the model is decoded from a memory map, tensor payloads are slices of the map (zero copy).
#![deny(unsafe_code)]

use bytes::Bytes;

/// `ModelProto`: the top-level message of an `.onnx` file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
}

/// `GraphProto`: nodes, initializers (weights) and graph inputs/outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// `ValueInfoProto`: only the name is needed (types are not checked).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `NodeProto`: one operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// `AttributeProto`: scalar, list and tensor attributes (graph-valued ones are skipped).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

/// `TensorProto`: a constant tensor (weights are `initializer`s of this type).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "bytes", tag = "9")]
    pub raw_data: Bytes,
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

/// `TensorProto.DataType.FLOAT`.
pub const DATA_TYPE_FLOAT: i32 = 1;
/// `TensorProto.DataLocation.EXTERNAL`.
pub const DATA_LOCATION_EXTERNAL: i32 = 1;

impl NodeProto {
    /// Integer-list attribute `name`, if present.
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        self.attribute
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.ints.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn round_trip_and_truncation() {
        let t = TensorProto {
            dims: vec![2, 3],
            data_type: DATA_TYPE_FLOAT,
            name: "w".into(),
            raw_data: Bytes::from((0..24u8).collect::<Vec<_>>()),
            ..Default::default()
        };
        let m = ModelProto {
            ir_version: 8,
            graph: Some(GraphProto {
                initializer: vec![t.clone()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let enc = m.encode_to_vec();
        let dec = ModelProto::decode(Bytes::from(enc.clone())).unwrap();
        assert_eq!(dec.graph.unwrap().initializer[0], t);
        assert!(ModelProto::decode(&enc[..enc.len() - 5]).is_err());
    }
}
