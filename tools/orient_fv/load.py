import os
W=os.environ.get("ORIENT_WORK", "/tmp/orient-fv")
import numpy as np, cv2
def load(path=W+'/d1.bin'):
    path=path or W+'/d1.bin'
    raw=open(path,'rb').read()
    n,nf=np.frombuffer(raw[:8],np.int32)
    rec=12+4*4*nf
    meta=np.zeros((n,3),int); F=np.zeros((n,4,nf),np.float32)
    for i in range(n):
        b=raw[8+i*rec:8+(i+1)*rec]
        meta[i]=np.frombuffer(b[:12],np.int32)
        F[i]=np.frombuffer(b[12:],np.float32).reshape(4,nf)
    t=np.fromfile(path+'.thumbs',np.uint8)
    recb=128*128*3+4
    t=t.reshape(n,recb)
    th=t[:,:128*128*3].reshape(n,128,128,3)
    la=t[:,128*128*3:].copy().view(np.float32)[:,0]
    return meta,F,th,la
def turned(th,k):
    """image needing k clockwise quarter turns = upright turned clockwise (4-k)%4 times"""
    j=(4-k)%4
    return np.rot90(th,-j) if j else th  # rot90 with negative = clockwise
