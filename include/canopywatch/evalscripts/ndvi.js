//VERSION=3
// canopywatch ndvi: (B08 - B04) / (B08 + B04) as 32-bit float, and dataMask.
function setup() {
  return {
    input: [{ bands: ["B04", "B08", "dataMask"], units: "REFLECTANCE" }],
    output: { id: "default", bands: 2, sampleType: "FLOAT32" },
    mosaicking: "SIMPLE"
  };
}

function evaluatePixel(sample) {
  var sum = sample.B08 + sample.B04;
  var ndvi = sum === 0 ? 0 : (sample.B08 - sample.B04) / sum;
  return [ndvi, sample.dataMask];
}
