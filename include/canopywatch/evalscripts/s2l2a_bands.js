//VERSION=3
// canopywatch s2l2a_bands: Sentinel-2 L2A surface reflectance as harmonized DN
// (reflectance x 10000, no +1000 offset), the scene classification (SCL) and dataMask.
function setup() {
  return {
    input: [{
      bands: ["B02", "B03", "B04", "B08", "B11", "B12", "SCL", "dataMask"],
      units: "DN"
    }],
    output: { id: "default", bands: 8, sampleType: "UINT16" },
    mosaicking: "SIMPLE"
  };
}

function evaluatePixel(sample) {
  return [sample.B02, sample.B03, sample.B04, sample.B08, sample.B11, sample.B12,
          sample.SCL, sample.dataMask];
}
